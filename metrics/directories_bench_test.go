package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
)

// fillDirectories stores n directories of 100 teams: every type, most ok,
// some syncing, failing (their polls backing off) or held for review, most
// synced once, and every tenth with three pending changes.
func fillDirectories(tb testing.TB, s *store.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	for i := range 100 {
		if err := s.CreateTeam(ctx, &store.Team{ID: fmt.Sprintf("t%d", i), Name: "T", Plan: store.PlanEnterprise, SSOStatus: "active"}); err != nil {
			tb.Fatal(err)
		}
	}
	types := metrics.DirectoryTypes
	failing := json.RawMessage(`{"at":"2026-01-01T00:00:00Z","kind":"full","result":"error","error":"connect: refused","consecutive_failures":2,"next_poll_at":"2099-01-01T00:00:00Z"}`)
	okPoll := json.RawMessage(`{"at":"2026-01-01T00:00:00Z","kind":"incremental","result":"ok","requests":3}`)
	synced := time.Now().Add(-time.Minute)
	const batch = 1000
	for start := 0; start < n; start += batch {
		err := s.WithTx(ctx, func(tx *store.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				d := &store.Directory{ID: fmt.Sprintf("d%05d", i), TeamID: fmt.Sprintf("t%d", i%100), Type: types[i%len(types)], State: store.StateOK, LastSyncAt: &synced}
				switch {
				case i%50 == 1:
					d.State = store.StateSyncing
				case i%50 == 2:
					d.State = store.StateNeedsReview
				case i%50 == 3:
					d.State, d.LastSyncAt = store.StateError, nil
				}
				if d.Type != "scim" {
					d.LastPoll = okPoll
					if d.State == store.StateError {
						d.LastPoll = failing
					}
				}
				if err := tx.CreateDirectory(ctx, d); err != nil {
					return err
				}
				if i%10 == 0 {
					for k := range 3 {
						if err := tx.MarkDirty(ctx, d.ID, store.DirtyUser, fmt.Sprintf("u%d", k), synced); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkScrape10kDirectories measures, on SQLite and on PostgreSQL (when
// ROSTER_TEST_DATABASE_URL is set), one scrape of a registry holding the
// directory gauges of 10,000 directories (a Gather: it serves the
// snapshot and reads nothing), and separately one background refresh of
// the snapshot (the store's aggregate queries), with the per-directory
// series off (the default) and on.
func BenchmarkScrape10kDirectories(b *testing.B) {
	for _, e := range testenv.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			s := testenv.OpenStore(b, e)
			fillDirectories(b, s, 10000)
			for _, per := range []bool{false, true} {
				name := "aggregates"
				if per {
					name = "per_directory"
				}
				m := metrics.New()
				c := metrics.NewDirectoryCollector(s, metrics.DirectoryOptions{PerDirectory: per})
				m.Registry.MustRegister(c)
				if err := c.Refresh(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.Run(name+"/scrape", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := m.Registry.Gather(); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(name+"/refresh", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := c.Refresh(context.Background()); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
