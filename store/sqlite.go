package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

func openSQLite(path string) (*Store, error) {
	// WAL with synchronous=NORMAL: a commit appends to the log without an
	// fsync (durable at checkpoints; a power cut can lose the last
	// commits, never corrupt). The log is checkpointed in the background
	// rather than inside a commit. No mmap: SQLite keeps no parsed copy of a
	// memory-mapped page, so every lookup re-parsed each page it walked;
	// the page cache keeps them parsed.
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)"
	// The writer's page cache is kept small: at every commit SQLite walks
	// its whole page-cache hash table (pcache1TruncateUnsafe), so a large
	// cache makes every commit of the one writer slower. Pages it misses
	// are in the OS page cache and the readers' caches.
	w, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&"+strings.Replace(pragmas, "cache_size(-65536)", "cache_size(-8192)", 1))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec("PRAGMA wal_autocheckpoint=0"); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", "file:"+path+"?mode=ro&"+strings.Replace(pragmas, "cache_size(-65536)", "cache_size(-16384)", 1))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	ck, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	ck.SetMaxOpenConns(1)
	st := &Store{engine: SQLite, w: w, r: r, ck: ck, writes: make(chan *writeReq, 1024), quit: make(chan struct{}), writeStmts: newStmtLRU(256)}
	st.reads = reads{st}
	st.wg.Add(2)
	go st.combine()
	go st.checkpoint()
	return st, nil
}

// checkpoint copies the SQLite write-ahead log back into the database file
// every second, off the commit path (autocheckpoint is off on the writer).
// PASSIVE never blocks writers or readers; when the log has grown large and
// was copied back entirely, the writer truncates it between two batches.
func (s *Store) checkpoint() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var busy, logged, done int
			if err := s.ck.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &done); err == nil && logged > 50000 && done == logged {
				s.truncateWAL.Store(true)
			}
			cancel()
		}
	}
}
