package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// statusNow is the clock roster status reads in these tests.
var statusNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// seedStatus writes three directories a running server could hold: one in
// error and backing off, one with changes pending for 10 minutes, one
// never synced. The store stays open, as a server's would.
func seedStatus(t *testing.T, e testenv.Engine) (args []string) {
	t.Helper()
	ctx := context.Background()
	url, dataDir := e.URL(t), t.TempDir()
	s, err := store.Open(ctx, url, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, tm := range []*store.Team{{ID: "t-acme", Name: "Acme", Plan: store.PlanEnterprise}, {ID: "t-beta", Name: "Beta", Plan: store.PlanEnterprise}} {
		if err := s.CreateTeam(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	synced := statusNow.Add(-3 * time.Hour)
	recent := statusNow.Add(-30 * time.Second)
	err = s.WithTx(ctx, func(tx *store.Tx) error {
		for _, d := range []*store.Directory{
			{ID: "dir-ldap", TeamID: "t-acme", Type: "ldap", State: store.StateError, LastSyncAt: &synced,
				LastError: "ldap: bind as cn=roster: LDAP Result Code 49 \"Invalid Credentials\"",
				LastPoll:  []byte(`{"at":"2026-12-01T11:50:00Z","kind":"incremental","result":"error","consecutive_failures":3,"next_poll_at":"2026-12-01T12:20:00Z"}`)},
			{ID: "dir-scim", TeamID: "t-acme", Type: "scim", State: store.StateOK, LastSyncAt: &recent},
			{ID: "dir-okta", TeamID: "t-beta", Type: "okta", State: store.StateSyncing},
		} {
			if err := tx.CreateDirectory(ctx, d); err != nil {
				return err
			}
		}
		return tx.MarkDirtyMany(ctx, "dir-scim", "user", []string{"u1", "u2", "u3"}, statusNow.Add(-10*time.Minute))
	})
	if err != nil {
		t.Fatal(err)
	}
	return []string{"--data-dir", dataDir, "--database-url", url}
}

func runStatus(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = status(args, &out, &errOut, func() time.Time { return statusNow })
	return code, out.String(), errOut.String()
}

func TestStatus(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			base := seedStatus(t, e)

			code, out, errOut := runStatus(t, base...)
			if code != 0 {
				t.Fatalf("roster status = %d, stderr %s", code, errOut)
			}
			want := `TEAM           DIRECTORY  TYPE  STATE    LAST SYNC  PENDING  LAG  BACKOFF                              LAST ERROR
Acme (t-acme)  dir-ldap   ldap  error    3h0m ago   0        -    3 failed, next 2026-12-01T12:20:00Z  ldap: bind as cn=roster: LDAP Result Code 49 "Invalid Credentials"
Acme (t-acme)  dir-scim   scim  ok       30s ago    3        10m  -                                    -
Beta (t-beta)  dir-okta   okta  syncing  never      0        -    -                                    -
`
			if out != want {
				t.Errorf("roster status printed\n%s\nwant\n%s", out, want)
			}

			code, out, errOut = runStatus(t, append(base, "--json")...)
			if code != 0 {
				t.Fatalf("roster status --json = %d, stderr %s", code, errOut)
			}
			var rows []map[string]any
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("--json: %v\n%s", err, out)
			}
			if len(rows) != 3 {
				t.Fatalf("--json: %d rows, want 3:\n%s", len(rows), out)
			}
			keys := []string{"backing_off", "consecutive_failures", "directory_id", "directory_name", "lag_seconds", "last_error", "last_sync_at",
				"next_poll_at", "oldest_pending_at", "pending_changes", "state", "team_id", "team_name", "type"}
			for _, r := range rows {
				var got []string
				for k := range r {
					got = append(got, k)
				}
				sort.Strings(got)
				if !slices.Equal(got, keys) {
					t.Errorf("row keys = %q, want %q", got, keys)
				}
			}
			ldap, scim, okta := rows[0], rows[1], rows[2]
			if ldap["directory_id"] != "dir-ldap" || ldap["state"] != "error" || ldap["backing_off"] != true || ldap["consecutive_failures"] != 3.0 ||
				ldap["next_poll_at"] != "2026-12-01T12:20:00Z" || !strings.Contains(ldap["last_error"].(string), "Invalid Credentials") ||
				ldap["last_sync_at"] != "2026-12-01T09:00:00Z" || ldap["team_name"] != "Acme" {
				t.Errorf("error row = %v", ldap)
			}
			if scim["directory_id"] != "dir-scim" || scim["pending_changes"] != 3.0 || scim["lag_seconds"] != 600.0 ||
				scim["oldest_pending_at"] != "2026-12-01T11:50:00Z" || scim["backing_off"] != false {
				t.Errorf("pending row = %v", scim)
			}
			if okta["directory_id"] != "dir-okta" || okta["state"] != "syncing" || okta["last_sync_at"] != nil || okta["lag_seconds"] != nil || okta["team_id"] != "t-beta" {
				t.Errorf("never-synced row = %v", okta)
			}

			for _, tc := range []struct {
				flags []string
				want  []string
			}{
				{[]string{"--problems"}, []string{"dir-ldap", "dir-scim"}},
				{[]string{"--state", "error"}, []string{"dir-ldap"}},
				{[]string{"--state", "needs_review"}, nil},
				{[]string{"--type", "okta"}, []string{"dir-okta"}},
				{[]string{"--team", "Beta"}, []string{"dir-okta"}},
				{[]string{"--team", "t-acme", "--type", "scim"}, []string{"dir-scim"}},
			} {
				code, out, errOut := runStatus(t, append(append(base, "--json"), tc.flags...)...)
				if code != 0 {
					t.Fatalf("roster status %q = %d, stderr %s", tc.flags, code, errOut)
				}
				var rows []struct {
					DirectoryID string `json:"directory_id"`
				}
				if err := json.Unmarshal([]byte(out), &rows); err != nil {
					t.Fatalf("%q: %v\n%s", tc.flags, err, out)
				}
				var ids []string
				for _, r := range rows {
					ids = append(ids, r.DirectoryID)
				}
				if !slices.Equal(ids, tc.want) {
					t.Errorf("roster status %q = %q, want %q", tc.flags, ids, tc.want)
				}
				if len(tc.want) == 0 && strings.TrimSpace(out) != "[]" {
					t.Errorf("roster status %q printed %q, want []", tc.flags, out)
				}
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no database", []string{"--data-dir", empty}, 1, "no roster database"},
		{"bad url", []string{"--database-url", "mysql://x"}, 1, "want empty"},
		{"bad state", []string{"--data-dir", empty, "--state", "broken"}, 2, "--state"},
		{"extra argument", []string{"--data-dir", empty, "extra"}, 2, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runStatus(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) || out != "" {
				t.Errorf("roster status %q = %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.msg)
			}
		})
	}
}
