package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// latestVersion is the number of the last file in migrations/.
const latestVersion = 7

// rawDB opens an empty database of the engine without the store, and says
// how store.Open reaches it (url, dataDir).
func rawDB(t *testing.T, e testenv.Engine) (db *sql.DB, url, dataDir string) {
	t.Helper()
	url, dataDir = e.URL(t), t.TempDir()
	driver, dsn := "pgx", url
	if url == "" {
		driver, dsn = "sqlite", "file:"+filepath.Join(dataDir, "roster.db")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url, dataDir
}

func engineName(e testenv.Engine) string {
	if e.Name == "postgres" {
		return store.Postgres
	}
	return store.SQLite
}

// legacyMigrate does what the hand-written runner before goose did: record
// versions in schema_migrations and run 0001, statement by statement,
// skipping comment lines.
func legacyMigrate(t *testing.T, db *sql.DB, engine string) {
	t.Helper()
	text, err := store.MigrationText(engine, "0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{"CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"}
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line + "\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			stmts = append(stmts, b.String())
			b.Reset()
		}
	}
	stmts = append(stmts, fmt.Sprintf("INSERT INTO schema_migrations (version, applied_at) VALUES (1, %d)", time.Now().UnixMicro()))
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func openAt(t *testing.T, url, dataDir string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, url, dataDir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func checkLatest(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	v, err := store.SchemaVersion(ctx, s)
	if err != nil || v != latestVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, latestVersion)
	}
	objs, err := store.SchemaObjects(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goose_db_version", "teams", "mirror_users", "events"} {
		if !objs[want] {
			t.Errorf("no %s after migrating", want)
		}
	}
	for _, gone := range []string{"schema_migrations", "directories_token"} {
		if objs[gone] {
			t.Errorf("%s is still there after migrating", gone)
		}
	}
}

// TestOpenAdoptsLegacyRunner opens a database that the hand-written runner
// migrated: it is recognised at version 1, keeps its rows and gets the
// migrations after 1.
func TestOpenAdoptsLegacyRunner(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			db, url, dataDir := rawDB(t, e)
			engine := engineName(e)
			legacyMigrate(t, db, engine)
			if _, err := db.Exec("INSERT INTO teams (id, name, plan, created_at, updated_at) VALUES ('t1', 'Old', 'enterprise', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO directories (id, team_id, type, token_hash, created_at, updated_at) VALUES ('d1', 't1', 'scim', 'h', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			if engine == store.SQLite {
				// A request log file as the code before its migrations made it.
				rl, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "roster-requests.db"))
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{
					`CREATE TABLE IF NOT EXISTS scim_requests (id INTEGER PRIMARY KEY AUTOINCREMENT, directory_id TEXT NOT NULL, at BIGINT NOT NULL, method TEXT NOT NULL,
						path TEXT NOT NULL, status INTEGER NOT NULL, duration_us BIGINT NOT NULL, error TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '')`,
					"CREATE INDEX IF NOT EXISTS scim_requests_dir ON scim_requests (directory_id, id)",
					"CREATE INDEX IF NOT EXISTS scim_requests_at ON scim_requests (at)",
					fmt.Sprintf("INSERT INTO scim_requests (directory_id, at, method, path, status, duration_us) VALUES ('d1', %d, 'GET', '/Users', 200, 5)", time.Now().UnixMicro()),
				} {
					if _, err := rl.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				rl.Close()
			}
			db.Close()

			s := openAt(t, url, dataDir)
			checkLatest(t, s)
			ctx := context.Background()
			// The same tables and indexes as a database goose made from
			// scratch.
			got, err := store.SchemaObjects(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			want, err := store.SchemaObjects(ctx, testenv.OpenStore(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("adopted schema (-fresh +adopted):\n%s", diff)
			}
			if tm, err := s.GetTeam(ctx, "t1"); err != nil || tm.Name != "Old" {
				t.Fatalf("team after adoption: %+v, %v", tm, err)
			}
			if d, err := s.GetDirectory(ctx, "d1"); err != nil || d.TokenHash != "h" {
				t.Fatalf("directory after adoption: %+v, %v", d, err)
			}
			if engine == store.SQLite {
				if reqs, err := s.ListSCIMRequests(ctx, "d1", 0, 10); err != nil || len(reqs) != 1 || reqs[0].Path != "/Users" {
					t.Fatalf("old request log: %+v, %v", reqs, err)
				}
			}
			s.Close()
			// Opening again changes nothing.
			s = openAt(t, url, dataDir)
			defer s.Close()
			checkLatest(t, s)
		})
	}
}

// TestSecondMigrationApplies migrates a database to version 1 with goose,
// as a roster of that version left it, and opens it: 0002 and 0003 apply
// on what 0001 created, and a directory stored at version 1 reads and
// takes the column 0003 adds.
func TestSecondMigrationApplies(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			db, url, dataDir := rawDB(t, e)
			engine := engineName(e)
			if err := store.MigrateTo(context.Background(), db, engine, 1); err != nil {
				t.Fatal(err)
			}
			var n int
			q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'directories_token'"
			if engine == store.Postgres {
				q = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'directories_token'"
			}
			if err := db.QueryRow(q).Scan(&n); err != nil || n != 1 {
				t.Fatalf("at version 1, directories_token: %d, %v", n, err)
			}
			if _, err := db.Exec("INSERT INTO teams (id, name, plan, created_at, updated_at) VALUES ('t1', 'One', 'enterprise', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO directories (id, team_id, type, token_hash, created_at, updated_at) VALUES ('d1', 't1', 'ldap', '', 1, 1)"); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s := openAt(t, url, dataDir)
			defer s.Close()
			checkLatest(t, s)
			ctx := context.Background()
			if tm, err := s.GetTeam(ctx, "t1"); err != nil || tm.Name != "One" {
				t.Fatalf("team after 0002: %+v, %v", tm, err)
			}
			d, err := s.GetDirectory(ctx, "d1")
			if err != nil || d.LastPoll != nil {
				t.Fatalf("directory after 0003: %+v, %v; want it with no last poll", d, err)
			}
			d.LastPoll = []byte(`{"requests":3}`)
			if err := s.UpdateDirectory(ctx, d); err != nil {
				t.Fatal(err)
			}
			if d, err = s.GetDirectory(ctx, "d1"); err != nil || string(d.LastPoll) != `{"requests":3}` {
				t.Fatalf("last_poll after an update: %+v, %v", d, err)
			}
		})
	}
}

// TestConcurrentOpens starts several replicas on one fresh PostgreSQL
// database at once: one migrates, the others wait and find it done.
func TestConcurrentOpens(t *testing.T) {
	url := testenv.PostgresURL(t)
	var wg sync.WaitGroup
	stores := make([]*store.Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stores[i], errs[i] = store.Open(ctx, url, t.TempDir())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	checkLatest(t, stores[0])
}
