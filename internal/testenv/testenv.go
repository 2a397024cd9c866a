// Package testenv gives tests the services they run against: SQLite always,
// PostgreSQL when ROSTER_TEST_DATABASE_URL is set, a real Redis when
// ROSTER_TEST_REDIS_URL is set. With ROSTER_TEST_REQUIRE_SERVICES=1 (CI) a
// missing or unreachable service fails the test instead of skipping it.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/roster-dev/roster/store"
)

// Required reports whether CI demands every service.
func Required() bool { return os.Getenv("ROSTER_TEST_REQUIRE_SERVICES") == "1" }

// Missing skips the test, or fails it when services are required.
func Missing(t testing.TB, what string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is required (ROSTER_TEST_REQUIRE_SERVICES=1) but not available", what)
	}
	t.Skipf("%s not available; set it up to run this test", what)
}

// Engine is a database engine tests run against.
type Engine struct {
	Name string
	// URL returns a database URL for a fresh, empty database ("" for SQLite
	// in dataDir).
	URL func(t testing.TB) string
}

// Engines lists SQLite and, when configured, PostgreSQL. Without
// ROSTER_TEST_DATABASE_URL the PostgreSQL entry skips (or fails in CI).
func Engines() []Engine {
	return []Engine{
		{Name: "sqlite", URL: func(testing.TB) string { return "" }},
		{Name: "postgres", URL: PostgresURL},
	}
}

// PostgresURL creates a fresh schema in the test database and returns a URL
// whose search_path points at it; the schema is dropped after the test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("ROSTER_TEST_DATABASE_URL")
	if base == "" {
		Missing(t, "PostgreSQL (ROSTER_TEST_DATABASE_URL)")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := "t_" + RandomHex(6)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		Missing(t, "PostgreSQL at ROSTER_TEST_DATABASE_URL ("+err.Error()+")")
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ROSTER_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RedisURL returns the real Redis for tests, or skips/fails.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("ROSTER_TEST_REDIS_URL")
	if u == "" {
		Missing(t, "Redis (ROSTER_TEST_REDIS_URL)")
	}
	return u
}

// OpenStore opens a fresh store on the engine.
func OpenStore(t testing.TB, e Engine) *store.Store {
	t.Helper()
	url := e.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, url, t.TempDir())
	if err != nil {
		t.Fatalf("open %s store: %v", e.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
