package store

import (
	"context"
	"embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

func (s *Store) migrate(ctx context.Context) error {
	if s.engine == SQLite {
		// WAL must be set before the read pool opens the file read-only.
		if _, err := s.w.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
			return err
		}
	}
	return s.WithTx(ctx, func(tx *Tx) error {
		if s.engine == Postgres {
			// Serialise concurrent start-ups of several replicas.
			if _, err := tx.tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7270001)"); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"); err != nil {
			return err
		}
		applied := map[int]bool{}
		rows, err := tx.query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		entries, err := migrationFS.ReadDir("migrations")
		if err != nil {
			return err
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration %s: name must start with a number", e.Name())
			}
			if applied[v] {
				continue
			}
			text, err := migrationFS.ReadFile("migrations/" + e.Name())
			if err != nil {
				return err
			}
			sqlText := string(text)
			if s.engine == SQLite {
				sqlText = strings.ReplaceAll(sqlText, "{{ID}}", "INTEGER PRIMARY KEY AUTOINCREMENT")
				sqlText = strings.ReplaceAll(sqlText, "{{NOROWID}}", "WITHOUT ROWID")
			} else {
				sqlText = strings.ReplaceAll(sqlText, "{{ID}}", "BIGSERIAL PRIMARY KEY")
				sqlText = strings.ReplaceAll(sqlText, "{{NOROWID}}", "")
			}
			for _, stmt := range splitStatements(sqlText) {
				if _, err := tx.tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s: %w", e.Name(), err)
				}
			}
			if _, err := tx.exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", v, micros(time.Now())); err != nil {
				return err
			}
		}
		return nil
	})
}

func splitStatements(text string) []string {
	var out []string
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(b.String()); s != "" {
				out = append(out, s)
			}
			b.Reset()
		}
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		out = append(out, s)
	}
	return out
}
