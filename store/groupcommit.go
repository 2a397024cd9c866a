package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// writeReq is one caller's transaction waiting for the SQLite writer.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *Tx) error
	done chan error
	tx   *Tx
	// panicked carries a panic out of the writer to the caller.
	panicked any
}

func (s *Store) submit(ctx context.Context, fn func(tx *Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	err := <-req.done
	if req.panicked != nil {
		panic(req.panicked)
	}
	if err == nil {
		for _, f := range req.tx.afterCommit {
			f()
		}
	}
	return err
}

// maxBatch bounds how many callers share one SQLite transaction.
const maxBatch = 128

// Group commit. Most of a small write's cost on SQLite is its commit: the
// WAL frames of every page the batch touched, two pwrite calls each, and
// callers writing at once touch mostly the same pages (the tails of the
// same indexes). So when the previous batch had company, the writer waits
// up to groupCommitDelay for up to groupCommitTarget callers before it
// begins: one commit then pays for more callers, at a cost in latency
// bounded by the delay. A lone caller (the previous batch had one) never
// waits. docs/PERFORMANCE.md has the measurements.
const (
	groupCommitDelay  = 300 * time.Microsecond
	groupCommitTarget = 8
)

// gather adds callers that arrive within groupCommitDelay to batch, until it
// holds groupCommitTarget. t is the writer's own stopped timer, reused.
func (s *Store) gather(batch []*writeReq, t *time.Timer) []*writeReq {
	t.Reset(groupCommitDelay)
	defer t.Stop()
	for len(batch) < groupCommitTarget {
		select {
		case r := <-s.writes:
			batch = append(batch, r)
		case <-t.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// combine is the SQLite writer: it takes whatever transactions are waiting,
// runs each as a savepoint of one transaction and commits once.
func (s *Store) combine() {
	defer s.wg.Done()
	wait := time.NewTimer(groupCommitDelay)
	wait.Stop()
	last := 0 // callers in the previous batch
	for {
		var first *writeReq
		select {
		case first = <-s.writes:
		case <-s.quit:
			for {
				select {
				case r := <-s.writes:
					r.done <- ErrClosed
				default:
					return
				}
			}
		}
		batch := []*writeReq{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) < groupCommitTarget && last >= 2 {
			batch = s.gather(batch, wait)
		}
		last = len(batch)
		s.runBatch(batch)
		if s.truncateWAL.Swap(false) {
			// On the writer's own connection: when another connection
			// restarts the log, the writer must drop its whole page cache
			// and read it again.
			s.w.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
		}
	}
}

func (s *Store) runBatch(batch []*writeReq) {
	ctx := context.Background()
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.done <- fmt.Errorf("begin: %w", err)
		}
		return
	}
	stmts := map[string]*sql.Stmt{}
	var ok []*writeReq
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		r.tx = newTx(s, sqlTx, stmts)
		if len(batch) == 1 {
			// Alone in the batch: the transaction itself is the savepoint.
			if err := runGuarded(r, r.tx); err != nil {
				sqlTx.Rollback()
				r.done <- err
				s.keepStatements(stmts)
				return
			}
			ok = append(ok, r)
			continue
		}
		// One savepoint name for every caller (each is released before
		// the next begins), so its three statements stay prepared.
		if _, err := r.tx.exec(ctx, "SAVEPOINT w"); err != nil {
			r.done <- fmt.Errorf("savepoint: %w", err)
			continue
		}
		err := runGuarded(r, r.tx)
		if err != nil {
			_, rbErr := r.tx.exec(ctx, "ROLLBACK TO w")
			r.tx.exec(ctx, "RELEASE w")
			if rbErr != nil {
				// The transaction is unusable: fail everyone.
				sqlTx.Rollback()
				r.done <- err
				for _, o := range ok {
					o.done <- fmt.Errorf("batch rolled back: %w", rbErr)
				}
				for _, rest := range batch[i+1:] {
					rest.done <- fmt.Errorf("batch rolled back: %w", rbErr)
				}
				return
			}
			r.done <- err
			continue
		}
		if _, err := r.tx.exec(ctx, "RELEASE w"); err != nil {
			r.done <- fmt.Errorf("release savepoint: %w", err)
			continue
		}
		ok = append(ok, r)
	}
	for _, st := range stmts {
		st.Close()
	}
	err = sqlTx.Commit()
	if err != nil {
		err = fmt.Errorf("commit: %w", err)
	}
	for _, r := range ok {
		r.done <- err
	}
	s.keepStatements(stmts)
}

// keepStatements keeps a finished batch's statements prepared on the (now
// free) connection for the next batches.
func (s *Store) keepStatements(stmts map[string]*sql.Stmt) {
	ctx := context.Background()
	for q := range stmts {
		if !s.writeStmts.admit(q) {
			continue
		}
		if st, err := s.w.PrepareContext(ctx, q); err == nil {
			s.writeStmts.put(q, st)
		}
	}
}

// runGuarded runs a caller's function, turning a panic into an error for
// the batch and handing the panic to the caller.
func runGuarded(r *writeReq, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("panic in transaction: %v", p)
		}
	}()
	return r.fn(tx)
}
