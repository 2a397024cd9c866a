package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Tx is a write transaction.
type Tx struct {
	reads
	s  *Store
	tx *sql.Tx
	// afterCommit hooks run once the transaction committed.
	afterCommit []func()
	// stmts caches statements prepared in this (SQLite batch) transaction.
	stmts map[string]*sql.Stmt
}

// newTx wraps a transaction; stmts is the SQLite batch's statement cache,
// nil elsewhere.
func newTx(s *Store, sqlTx *sql.Tx, stmts map[string]*sql.Stmt) *Tx {
	tx := &Tx{s: s, tx: sqlTx, stmts: stmts}
	tx.reads = reads{tx}
	return tx
}

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("store closed")

// WithTx runs fn in a write transaction, committing when fn returns nil.
// On SQLite, concurrent callers' transactions are batched: each runs as a
// savepoint of one transaction, so one failing caller rolls back only its
// own work, and all of them pay for one commit.
func (s *Store) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	if s.writes != nil {
		return s.submit(ctx, fn)
	}
	for attempt := 0; ; attempt++ {
		err := s.withTxOnce(ctx, fn)
		if err != nil && s.engine == Postgres && attempt < 5 && isRetryablePG(err) {
			continue
		}
		return err
	}
}

func (s *Store) withTxOnce(ctx context.Context, fn func(tx *Tx) error) (err error) {
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := newTx(s, sqlTx, nil)
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
		if err != nil {
			sqlTx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range tx.afterCommit {
		f()
	}
	return nil
}

// AfterCommit registers f to run after the transaction commits.
func (tx *Tx) AfterCommit(f func()) { tx.afterCommit = append(tx.afterCommit, f) }

// Engine says which database engine backs the transaction.
func (tx *Tx) Engine() string { return tx.s.engine }

func isRetryablePG(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE 40001") || strings.Contains(msg, "SQLSTATE 40P01")
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

func (tx *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if tx.stmts != nil {
		ctx = batchCtx(ctx)
		st, err := tx.prepared(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(ctx, args...)
	}
	return tx.tx.ExecContext(ctx, tx.s.rebind(q), args...)
}

// batchCtx drops the caller's cancellation for a statement of a SQLite
// batch. The connection and its transaction are shared by the batch, so a
// statement interrupted by one caller's cancelled request would fail in
// the middle of the others' work; a caller is checked for cancellation
// before its turn instead. It also spares the driver a watcher goroutine
// and a progress handler per statement (modernc.org/sqlite sets both up
// for every call with a cancellable context).
func batchCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// prepared returns a statement for a batch transaction: prepared on the
// writer's connection by an earlier batch, else once in this one.
func (tx *Tx) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := tx.stmts[q]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if ps := tx.s.writeStmts.get(q); ps != nil {
		st = tx.tx.StmtContext(ctx, ps) // reuses the connection's statement
	} else {
		var err error
		if st, err = tx.tx.PrepareContext(ctx, q); err != nil {
			return nil, err
		}
	}
	if len(tx.stmts) < 512 {
		tx.stmts[q] = st
	}
	return st, nil
}

func (tx *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if tx.stmts != nil {
		ctx = batchCtx(ctx)
		st, err := tx.prepared(ctx, q)
		if err != nil {
			return nil, err
		}
		return st.QueryContext(ctx, args...)
	}
	return tx.tx.QueryContext(ctx, tx.s.rebind(q), args...)
}

func (tx *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if tx.stmts != nil {
		ctx = batchCtx(ctx)
		st, err := tx.prepared(ctx, q)
		if err == nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return tx.tx.QueryRowContext(ctx, tx.s.rebind(q), args...)
}

// ReadTx is a read-only snapshot of the database.
type ReadTx struct {
	reads
	s  *Store
	tx *sql.Tx
}

// ReadSnapshot runs fn in a read-only transaction that sees one consistent
// snapshot.
func (s *Store) ReadSnapshot(ctx context.Context, fn func(rt *ReadTx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.engine == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	rt := &ReadTx{s: s, tx: tx}
	rt.reads = reads{rt}
	return fn(rt)
}

func (rt *ReadTx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return rt.tx.QueryContext(ctx, rt.s.rebind(q), args...)
}

func (rt *ReadTx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return rt.tx.QueryRowContext(ctx, rt.s.rebind(q), args...)
}
