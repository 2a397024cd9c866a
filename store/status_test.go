package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// TestDirectoryStatuses reads the operator's overview through a read-only
// store opened beside a writable one (a running server), on both engines.
func TestDirectoryStatuses(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			url, dataDir := e.URL(t), t.TempDir()
			s := openAt(t, url, dataDir)
			synced := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			observed := time.Date(2026, 11, 30, 12, 5, 0, 0, time.UTC)
			for _, tm := range []*store.Team{{ID: "t2", Name: "Beta", Plan: store.PlanEnterprise}, {ID: "t1", Name: "Alpha", Plan: store.PlanEnterprise}} {
				if err := s.CreateTeam(ctx, tm); err != nil {
					t.Fatal(err)
				}
			}
			mustTx(t, s, func(tx *store.Tx) error {
				for _, d := range []*store.Directory{
					{ID: "d-ok", TeamID: "t1", Type: "scim", LastSyncAt: &synced},
					{ID: "d-err", TeamID: "t1", Type: "ldap", State: store.StateError, LastError: "ldap: bind: invalid credentials", LastSyncAt: &synced,
						LastPoll: []byte(`{"at":"2026-11-30T12:10:00Z","kind":"incremental","result":"error","consecutive_failures":2,"next_poll_at":"2026-11-30T12:30:00Z"}`)},
					{ID: "d-new", TeamID: "t2", Type: "okta", State: store.StateSyncing},
				} {
					if err := tx.CreateDirectory(ctx, d); err != nil {
						return err
					}
				}
				if err := tx.MarkDirty(ctx, "d-ok", "user", "u1", observed); err != nil {
					return err
				}
				return tx.MarkDirty(ctx, "d-ok", "user", "u2", observed.Add(time.Minute))
			})

			ro, err := store.OpenReadOnly(ctx, url, dataDir)
			if err != nil {
				t.Fatalf("OpenReadOnly: %v", err)
			}
			defer ro.Close()
			got, err := ro.DirectoryStatuses(ctx, store.StatusFilter{})
			if err != nil {
				t.Fatal(err)
			}
			want := []store.DirectoryStatus{
				{TeamID: "t1", TeamName: "Alpha", DirectoryID: "d-ok", Type: "scim", State: store.StateOK, LastSyncAt: &synced, Pending: 2, OldestPending: &observed},
				{TeamID: "t1", TeamName: "Alpha", DirectoryID: "d-err", Type: "ldap", State: store.StateError, LastSyncAt: &synced, LastError: "ldap: bind: invalid credentials",
					LastPoll: []byte(`{"at":"2026-11-30T12:10:00Z","kind":"incremental","result":"error","consecutive_failures":2,"next_poll_at":"2026-11-30T12:30:00Z"}`)},
				{TeamID: "t2", TeamName: "Beta", DirectoryID: "d-new", Type: "okta", State: store.StateSyncing},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DirectoryStatuses (-want +got):\n%s", diff)
			}
			for _, tc := range []struct {
				f    store.StatusFilter
				want []string
			}{
				{store.StatusFilter{State: store.StateError}, []string{"d-err"}},
				{store.StatusFilter{Type: "okta"}, []string{"d-new"}},
				{store.StatusFilter{Team: "t1"}, []string{"d-ok", "d-err"}},
				{store.StatusFilter{Team: "Beta"}, []string{"d-new"}},
				{store.StatusFilter{Team: "t1", Type: "okta"}, nil},
			} {
				rows, err := ro.DirectoryStatuses(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range rows {
					ids = append(ids, r.DirectoryID)
				}
				if !cmp.Equal(ids, tc.want) {
					t.Errorf("DirectoryStatuses(%+v) = %q, want %q", tc.f, ids, tc.want)
				}
			}
			// Read-only: a write fails in the database, and the store it
			// sits beside keeps working.
			if err := ro.CreateTeam(ctx, &store.Team{ID: "t3", Name: "Gamma", Plan: store.PlanFree}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "read") {
				t.Errorf("CreateTeam through the read-only store: err = %v, want a read-only refusal", err)
			}
			if err := s.CreateTeam(ctx, &store.Team{ID: "t4", Name: "Delta", Plan: store.PlanFree}); err != nil {
				t.Errorf("the writable store beside it: %v", err)
			}
			// With the server stopped (SQLite: no write-ahead log files left).
			ro.Close()
			s.Close()
			ro, err = store.OpenReadOnly(ctx, url, dataDir)
			if err != nil {
				t.Fatalf("OpenReadOnly with the server stopped: %v", err)
			}
			if rows, err := ro.DirectoryStatuses(ctx, store.StatusFilter{}); err != nil || len(rows) != 3 {
				t.Errorf("with the server stopped: %d rows, %v; want 3", len(rows), err)
			}
		})
	}
}

// TestOpenReadOnlySchemaVersion: a database behind or ahead of this
// binary's migrations, or none at all, is a clear error, and nothing is
// created or migrated.
func TestOpenReadOnlySchemaVersion(t *testing.T) {
	ctx := context.Background()
	t.Run("missing sqlite", func(t *testing.T) {
		dir := t.TempDir()
		_, err := store.OpenReadOnly(ctx, "", dir)
		if err == nil || !strings.Contains(err.Error(), "no roster database") {
			t.Fatalf("err = %v, want no roster database", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "roster.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenReadOnly created roster.db (stat: %v)", err)
		}
	})
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			db, url, dataDir := rawDB(t, e)
			if _, err := db.Exec("CREATE TABLE unrelated (x INTEGER)"); err != nil {
				t.Fatal(err)
			}
			if _, err := store.OpenReadOnly(ctx, url, dataDir); !errors.Is(err, store.ErrSchemaVersion) || !strings.Contains(err.Error(), "no roster schema") {
				t.Fatalf("empty database: err = %v, want no roster schema (ErrSchemaVersion)", err)
			}
			if err := store.MigrateTo(ctx, db, engineName(e), 3); err != nil {
				t.Fatal(err)
			}
			_, err := store.OpenReadOnly(ctx, url, dataDir)
			if !errors.Is(err, store.ErrSchemaVersion) || !strings.Contains(err.Error(), "at migration 3") {
				t.Fatalf("behind: err = %v, want at migration 3 (ErrSchemaVersion)", err)
			}
			if v := gooseVersion(t, db); v != 3 {
				t.Fatalf("OpenReadOnly moved the schema to %d", v)
			}
			if err := store.MigrateTo(ctx, db, engineName(e), latestVersion); err != nil {
				t.Fatal(err)
			}
			ro, err := store.OpenReadOnly(ctx, url, dataDir)
			if err != nil {
				t.Fatalf("current: %v", err)
			}
			ro.Close()
			if _, err := db.Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, TRUE)"); err != nil {
				t.Fatal(err)
			}
			if _, err := store.OpenReadOnly(ctx, url, dataDir); !errors.Is(err, store.ErrSchemaVersion) || !strings.Contains(err.Error(), "newer than this roster") {
				t.Fatalf("ahead: err = %v, want newer than this roster (ErrSchemaVersion)", err)
			}
		})
	}
}

func gooseVersion(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow("SELECT MAX(version_id) FROM goose_db_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
