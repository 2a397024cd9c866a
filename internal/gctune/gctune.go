// Package gctune keeps garbage collection cheap while the heap is small.
//
// Go collects when the heap has grown by GOGC percent of what survived the
// last collection. roster's live heap is small between bulk jobs, so under
// a steady SCIM load the default GOGC=100 collects many times a second; the
// mark phase then takes a processor from the single SQLite writer and holds
// requests up. docs/PERFORMANCE.md has what a higher GOGC was worth.
//
// The tuner gives every cycle at least a minimum headroom: after each
// collection it sets GOGC to 100×headroom/live, kept between 100 and 800.
// A large heap (a full reconcile of a big directory) keeps GOGC=100, so
// peak memory is what it would be without the tuner, plus at most the
// headroom.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

const (
	minPercent = 100
	maxPercent = 800
)

// Percent is the GOGC the tuner sets for a live heap of live bytes.
func Percent(live, headroom uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := headroom * 100 / live
	switch {
	case p < minPercent:
		return minPercent
	case p > maxPercent:
		return maxPercent
	}
	return int(p)
}

// Tuner adjusts GOGC after every collection until stopped.
type Tuner struct {
	headroom uint64
	stopped  atomic.Bool
	last     atomic.Int64
	sample   []metrics.Sample
}

// Start begins tuning, unless the GOGC environment variable is set (an
// operator's choice wins). It returns nil when it did not start.
func Start(headroom uint64) *Tuner {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	t := &Tuner{headroom: headroom, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// Stop ends tuning and restores GOGC=100.
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(minPercent)
}

// Percent is the GOGC the tuner last set.
func (t *Tuner) Percent() int { return int(t.last.Load()) }

// arm registers a finalizer on a fresh object: it runs after the next
// collection that finds the object unreachable, adjusts and re-arms.
func (t *Tuner) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	})
}

type sentinel struct{ _ [16]byte }

func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.headroom)
	if int64(p) != t.last.Load() {
		debug.SetGCPercent(p)
		t.last.Store(int64(p))
	}
}
