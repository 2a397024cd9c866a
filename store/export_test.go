package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// Hooks for the external tests of migrations.

// MigrateTo runs the main migrations on db up to version, as an older
// roster would have left the database.
func MigrateTo(ctx context.Context, db *sql.DB, engine string, version int64) error {
	return migrateTo(ctx, db, engine, "migrations", version)
}

// MigrationText returns a main migration file as engine spells it.
func MigrationText(engine, name string) (string, error) {
	fsys, err := migrations(engine, "migrations")
	if err != nil {
		return "", err
	}
	b, err := fs.ReadFile(fsys, name)
	return string(b), err
}

// SchemaVersion is the main database's version as goose records it.
func SchemaVersion(ctx context.Context, s *Store) (int64, error) {
	fsys, err := migrations(s.engine, "migrations")
	if err != nil {
		return 0, err
	}
	p, err := goose.NewProvider(dialectOf(s.engine), s.w, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}

// SchemaObjects names the tables and indexes of the main database.
func SchemaObjects(ctx context.Context, s *Store) (map[string]bool, error) {
	q := "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
	if s.engine == Postgres {
		q = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
	}
	rows, err := s.w.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// Analyze updates the planner's statistics, as autovacuum (PostgreSQL)
// or a long-running database would have, after a benchmark's bulk seed.
func Analyze(ctx context.Context, s *Store) error {
	_, err := s.w.ExecContext(ctx, "ANALYZE")
	return err
}

// Explain returns the query plan of q on the main database.
func Explain(ctx context.Context, s *Store, q string, args ...any) (string, error) {
	prefix := "EXPLAIN QUERY PLAN "
	if s.engine == Postgres {
		prefix = "EXPLAIN "
	}
	rows, err := s.w.QueryContext(ctx, s.rebind(prefix+q), args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := ""
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		out += fmt.Sprintln(vals...)
	}
	return out, rows.Err()
}
