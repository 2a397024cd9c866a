package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

func TestStmtLRU(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	prep := func(q string) *sql.Stmt {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	c := newStmtLRU(3)
	fixed := "SELECT 1"
	if c.admit(fixed) {
		t.Fatal("admitted on first use")
	}
	if !c.admit(fixed) {
		t.Fatal("not admitted on second use")
	}
	c.put(fixed, prep(fixed))
	// A stream of one-off texts, with the fixed one used in between, must
	// not push the fixed one out.
	for i := 0; i < 20; i++ {
		q := fmt.Sprintf("SELECT %d", i+2)
		c.admit(q)
		c.admit(q)
		c.put(q, prep(q))
		if c.get(fixed) == nil {
			t.Fatalf("fixed statement evicted after %d others", i+1)
		}
		if c.len() > 3 {
			t.Fatalf("cache holds %d > 3", c.len())
		}
	}
	// Evicted statements are closed.
	old := prep("SELECT 'a'")
	c.put("SELECT 'a'", old)
	for i := 0; i < 3; i++ {
		q := fmt.Sprintf("SELECT 'b%d'", i)
		c.put(q, prep(q))
	}
	if _, err := old.Exec(); err == nil {
		t.Fatal("evicted statement still open")
	}
	if c.get(fixed) != nil {
		t.Fatal("fixed statement should now be evicted (not used recently)")
	}
	c.closeAll()
	if c.len() != 0 {
		t.Fatal("closeAll left entries")
	}
}

func TestChunk(t *testing.T) {
	sizes := map[int]bool{}
	for n := 1; n <= 1200; n++ {
		covered := 0
		for covered < n {
			c := chunk(n-covered, 500)
			if c < 1 || c > n-covered || c > 500 {
				t.Fatalf("chunk(%d, 500) = %d", n-covered, c)
			}
			sizes[c] = true
			covered += c
		}
	}
	// 500 and the powers of two up to 256: ten statement texts in all.
	if len(sizes) != 10 {
		t.Fatalf("%d distinct sizes, want 10: %v", len(sizes), sizes)
	}
}
