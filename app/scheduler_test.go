package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/store"
)

// TestSchedulesComeFromPollSettings checks that the scheduler takes each
// polled directory's schedule from its connector's settings, with the one
// default, follows changes, and leaves SCIM directories alone.
func TestSchedulesComeFromPollSettings(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminToken = "scheduler-test-token-123456"
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	a, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Store.CreateTeam(ctx, &store.Team{ID: "t", Name: "T", Plan: "enterprise", SSOStatus: "active"}); err != nil {
		t.Fatal(err)
	}
	ldapSettings := func(schedule string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"url": "ldap://127.0.0.1:1", "base_dn": "DC=x", "schedule": schedule})
		return b
	}
	err = a.Store.WithTx(ctx, func(tx *store.Tx) error {
		for _, d := range []*store.Directory{
			{ID: "every-minute", TeamID: "t", Type: "ldap", Settings: ldapSettings("@every 1m")},
			{ID: "default", TeamID: "t", Type: "ldap", Settings: ldapSettings("")},
			{ID: "pushed", TeamID: "t", Type: "scim"},
		} {
			if err := tx.CreateDirectory(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newCron()
	entries := map[string]scheduled{}
	specs := func() map[string]string {
		out := map[string]string{}
		for id, e := range entries {
			out[id] = e.spec
		}
		return out
	}
	a.syncSchedules(ctx, c, entries, log)
	want := map[string]string{"every-minute": "@every 1m", "default": connectors.DefaultSchedule}
	if diff := cmp.Diff(want, specs()); diff != "" {
		t.Fatalf("schedules (-want +got):\n%s", diff)
	}
	if n := len(c.Entries()); n != 2 {
		t.Fatalf("%d cron entries, want 2", n)
	}

	d, err := a.Store.GetDirectory(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	d.Settings = ldapSettings("*/10 * * * *")
	if err := a.Store.UpdateDirectory(ctx, d); err != nil {
		t.Fatal(err)
	}
	a.syncSchedules(ctx, c, entries, log)
	want["default"] = "*/10 * * * *"
	if diff := cmp.Diff(want, specs()); diff != "" {
		t.Fatalf("schedules after a change (-want +got):\n%s", diff)
	}
	if n := len(c.Entries()); n != 2 {
		t.Fatalf("%d cron entries after a change, want 2 (the old one removed)", n)
	}
}
