package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// querier runs reads: the Store on its read pool, a Tx inside its write
// transaction (so it sees its own writes), a ReadTx in its snapshot.
type querier interface {
	query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	queryRow(ctx context.Context, q string, args ...any) *sql.Row
}

// reads holds the reads that Store, Tx and ReadTx share: each of them
// embeds reads over itself, so a read is written once, as a method of
// reads, and means the same wherever it is called. Reads that differ by
// where they run (a row lock in a Tx, a snapshot of their own on the Store)
// are methods of their type.
//
// A read given a list of ids reads those ids; a nil or empty list reads
// none. A read of everything has no ids parameter.
type reads struct{ on querier }

// rebind turns '?' placeholders into $n for PostgreSQL.
func (s *Store) rebind(q string) string {
	if s.engine != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inStr := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == '\'' {
			inStr = !inStr
		}
		if c == '?' && !inStr {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.readStmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.r.QueryContext(ctx, s.rebind(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.readStmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, s.rebind(q), args...)
}

// readStmt returns a cached prepared statement for a read on SQLite
// (database/sql prepares it once per pooled connection); PostgreSQL's
// driver caches statements itself. The cache is bounded: queries built
// from filters vary.
func (s *Store) readStmt(ctx context.Context, q string) *sql.Stmt {
	if s.engine != SQLite {
		return nil
	}
	if v, ok := s.readStmts.Load(q); ok {
		return v.(*sql.Stmt)
	}
	if s.readStmtCount.Load() >= 1000 {
		return nil
	}
	st, err := s.r.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	if v, loaded := s.readStmts.LoadOrStore(q, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	s.readStmtCount.Add(1)
	return st
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// storedNow is the current time at the precision the store keeps
// (microseconds), so that what a write answers (meta.lastModified) is what
// a later read returns.
func storedNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// placeholders returns "(?, ?, ?), (?, ?, ?)" for n rows of k columns.
func placeholders(n, k int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func inBatches(ids []string, n int, fn func([]string) error) error {
	for start, end := 0, 0; start < len(ids); start = end {
		end = start + chunk(len(ids)-start, n)
		if err := fn(ids[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// chunk says how many of the remaining rows the next statement takes: max,
// or the largest power of two not above what remains. Statements built for
// n rows are then of a few sizes only, and stay prepared instead of being
// prepared afresh for every count of rows.
func chunk(remaining, max int) int {
	if remaining >= max {
		return max
	}
	return 1 << (bits.Len(uint(remaining)) - 1)
}

func qs(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// idLists reads (key, value) rows of a directory whose keyCol is in ids,
// in batches, into a map from key to its values.
func idLists(ctx context.Context, q querier, base, keyCol, dirID string, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := inBatches(ids, 500, func(part []string) error {
		rows, err := q.query(ctx, base+" AND "+keyCol+" IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
		if err != nil {
			return fmt.Errorf("read %s: %w", keyCol, err)
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			out[k] = append(out[k], v)
		}
		return rows.Err()
	})
	return out, err
}

// allNames reads every (id, name) row of a directory that base selects.
func allNames(ctx context.Context, q querier, base, dirID string) (map[string]string, error) {
	out := map[string]string{}
	return out, readNames(ctx, q, out, base, dirID)
}

// idNames reads the (id, name) rows of a directory whose idCol is in ids,
// in batches.
func idNames(ctx context.Context, q querier, base, idCol, dirID string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	err := inBatches(ids, 500, func(part []string) error {
		return readNames(ctx, q, out, base+" AND "+idCol+" IN ("+qs(len(part))+")", append([]any{dirID}, anys(part)...)...)
	})
	return out, err
}

func readNames(ctx context.Context, q querier, out map[string]string, query string, args ...any) error {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		out[id] = name
	}
	return rows.Err()
}

func prefixCols(cols, alias string) string {
	if alias == "" {
		return cols
	}
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = alias + "." + parts[i]
	}
	return strings.Join(parts, ", ")
}
