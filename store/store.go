// Package store keeps roster's state in SQLite (embedded default) or
// PostgreSQL (scaled out): teams, directories, the mirror of what each
// directory says, the applied roster, the event log and the SCIM request log.
// It owns the schema: no other package writes SQL or names a table, and the
// SCIM listing goes through SearchUsers and SearchGroups.
//
// Queries are written once with '?' placeholders; the PostgreSQL dialect
// rewrites them to $n. The reads that Store, Tx and ReadTx share are
// written once (see reads). Writes to the mirror keep its bookkeeping
// (versions, creation times) and mark what they change dirty for the
// reconciler. The schema comes from migrations run by goose (migrate.go).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // pure-Go SQLite driver "sqlite"
)

// Engine names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Store is roster's database. It is safe for concurrent use.
type Store struct {
	reads
	engine string
	// SQLite only: writes go through one goroutine that runs many callers'
	// transactions as savepoints of one transaction (group commit).
	writes chan *writeReq
	quit   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
	// w takes writes. On SQLite it has a single connection (SQLite has one
	// writer; queueing in Go is cheaper than busy retries) and transactions
	// start IMMEDIATE. On PostgreSQL w and r are the same pool.
	w *sql.DB
	r *sql.DB
	// ck is SQLite's checkpointing connection.
	ck *sql.DB
	// readStmts caches prepared reads (SQLite).
	readStmts     sync.Map
	readStmtCount atomic.Int64
	// truncateWAL asks the writer to truncate the write-ahead log between
	// batches (set by checkpoint when the log is large and copied back).
	truncateWAL atomic.Bool
	// writeStmts holds statements prepared on the SQLite writer's single
	// connection, reused by later batches; only the writer goroutine uses it.
	writeStmts *stmtLRU
	// reqLog holds the SCIM request log: on SQLite a database file of its
	// own, on PostgreSQL the main database (see reqlog.go).
	reqLog *sql.DB
	// hooks are told about commits that appended events (webhooks.go).
	hooks eventHooks
}

// Open opens (creating if needed) the database. An empty url means SQLite in
// dataDir/roster.db; postgres:// or postgresql:// URLs open PostgreSQL.
// Migrations run before Open returns.
func Open(ctx context.Context, url, dataDir string) (*Store, error) {
	engine, path, err := parseDatabaseURL(url, dataDir)
	if err != nil {
		return nil, err
	}
	var s *Store
	switch engine {
	case SQLite:
		if url == "" {
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return nil, fmt.Errorf("create data dir: %w", err)
			}
		}
		st, err := openSQLite(path)
		if err != nil {
			return nil, err
		}
		if st.reqLog, err = openReqLog(ctx, path); err != nil {
			st.Close()
			return nil, err
		}
		s = st
	case Postgres:
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s = &Store{engine: Postgres, w: db, r: db, reqLog: db}
		s.reads = reads{s}
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return s, nil
}

// parseDatabaseURL says which engine a --database-url names and, for
// SQLite, the database file: an empty url is roster.db in dataDir.
func parseDatabaseURL(url, dataDir string) (engine, sqlitePath string, err error) {
	switch {
	case url == "" || strings.HasPrefix(url, "sqlite:") || strings.HasPrefix(url, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite://"), "sqlite:")
		if path == "" {
			path = filepath.Join(dataDir, "roster.db")
		}
		return SQLite, path, nil
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		return Postgres, "", nil
	}
	return "", "", fmt.Errorf("database url %q: want empty (SQLite in the data dir), sqlite:PATH or postgres://", redactURL(url))
}

// Engine says which database engine backs the store.
func (s *Store) Engine() string { return s.engine }

// Close closes the database.
func (s *Store) Close() error {
	if s.quit != nil {
		s.closed.Do(func() { close(s.quit) })
		s.wg.Wait()
	}
	if s.writeStmts != nil {
		s.writeStmts.closeAll()
	}
	err := s.w.Close()
	if s.ck != nil {
		s.ck.Close()
	}
	if s.r != s.w {
		if e := s.r.Close(); err == nil {
			err = e
		}
	}
	if s.reqLog != nil && s.reqLog != s.w {
		if e := s.reqLog.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.engine, err)
	}
	return nil
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "REDACTED" + u[i:]
		}
	}
	return u
}
