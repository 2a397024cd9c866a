package store

import (
	"container/list"
	"database/sql"
)

// stmtLRU keeps the most recently used prepared statements of the SQLite
// writer's connection. Some queries are built for n rows or n ids, so the
// set of texts is unbounded; a plain bounded map fills up with those and
// then never admits the fixed queries that run on every request (it did:
// after a bulk load every group PATCH re-prepared its statements). Only the
// writer goroutine uses it, so it has no lock.
type stmtLRU struct {
	// seen holds texts used once, not yet prepared on the connection: a
	// text is admitted on its second batch, so one-off queries are not
	// prepared twice.
	seen  map[string]struct{}
	cap   int
	order *list.List // front = most recent; values are *lruEntry
	byQ   map[string]*list.Element
}

type lruEntry struct {
	q  string
	st *sql.Stmt
}

func newStmtLRU(capacity int) *stmtLRU {
	return &stmtLRU{seen: map[string]struct{}{}, cap: capacity, order: list.New(), byQ: map[string]*list.Element{}}
}

// get returns the statement for q and marks it recently used.
func (c *stmtLRU) get(q string) *sql.Stmt {
	e, ok := c.byQ[q]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).st
}

// admit says whether q, used in a batch and not cached, should be prepared
// on the connection now: on its second batch.
func (c *stmtLRU) admit(q string) bool {
	if _, ok := c.byQ[q]; ok {
		return false
	}
	if _, ok := c.seen[q]; ok {
		delete(c.seen, q)
		return true
	}
	if len(c.seen) >= 4*c.cap {
		clear(c.seen)
	}
	c.seen[q] = struct{}{}
	return false
}

// put adds st for q, closing the least recently used statements beyond the
// capacity. Callers must not be using an evicted statement: the writer
// calls put between batches.
func (c *stmtLRU) put(q string, st *sql.Stmt) {
	if e, ok := c.byQ[q]; ok {
		old := e.Value.(*lruEntry)
		if old.st != st {
			old.st.Close()
			old.st = st
		}
		c.order.MoveToFront(e)
		return
	}
	c.byQ[q] = c.order.PushFront(&lruEntry{q: q, st: st})
	for c.order.Len() > c.cap {
		e := c.order.Back()
		ent := e.Value.(*lruEntry)
		c.order.Remove(e)
		delete(c.byQ, ent.q)
		ent.st.Close()
	}
}

func (c *stmtLRU) len() int { return c.order.Len() }

// closeAll closes every statement.
func (c *stmtLRU) closeAll() {
	for e := c.order.Front(); e != nil; e = e.Next() {
		e.Value.(*lruEntry).st.Close()
	}
	c.order.Init()
	c.byQ = map[string]*list.Element{}
}
