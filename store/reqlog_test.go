package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The SQLite request log is written in a file of its own: a flush must not
// count as a commit to the main database, whose readers would otherwise
// drop their page caches.
func TestRequestLogOwnFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "roster-requests.db")); err != nil {
		t.Fatalf("request log file: %v", err)
	}
	conn, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	version := func() int64 {
		t.Helper()
		var v int64
		if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := version()
	entry := SCIMRequest{DirectoryID: "d1", At: time.Now(), Method: "PATCH", Path: "/scim/v2/d1/Groups/g", Status: 204, Body: `{"Operations":[]}`}
	if err := s.LogSCIMRequests(ctx, []SCIMRequest{entry, entry}); err != nil {
		t.Fatal(err)
	}
	if v2 := version(); v2 != v1 {
		t.Fatalf("a request log flush committed to the main database (data_version %d → %d)", v1, v2)
	}
	// The check can see a commit: a write to the main database moves it.
	if err := s.CreateTeam(ctx, &Team{ID: "t1", Name: "One", Plan: PlanEnterprise}); err != nil {
		t.Fatal(err)
	}
	if v3 := version(); v3 == v1 {
		t.Fatal("data_version did not move after a main-database commit")
	}
	conn.Close()
	// The log survives a restart, and pruning works on its file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, "", dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ListSCIMRequests(ctx, "d1", 0, 10)
	if err != nil || len(got) != 2 || got[0].Path != entry.Path || got[0].ID <= got[1].ID {
		t.Fatalf("log after reopening = %+v, %v", got, err)
	}
	if n, err := s.PruneSCIMRequests(ctx, time.Now().Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v", n, err)
	}
}

func TestReqLogPath(t *testing.T) {
	for in, want := range map[string]string{
		"/data/roster.db":         "/data/roster-requests.db",
		"/data/x.sqlite?mode=rwc": "/data/x-requests.sqlite?mode=rwc",
		"relative/db":             "relative/db-requests",
	} {
		if got := reqLogPath(in); got != want {
			t.Errorf("reqLogPath(%q) = %q, want %q", in, got, want)
		}
	}
}
