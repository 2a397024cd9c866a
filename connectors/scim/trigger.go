package scim

import (
	"context"
	"sync/atomic"
	"time"
)

// wrote records that a directory changed: it triggers a reconcile (after
// the caller's commit) through a per-directory loop that coalesces bursts.
func (s *Server) wrote(dirID string) {
	v, ok := s.triggers.Load(dirID)
	if !ok {
		v, _ = s.triggers.LoadOrStore(dirID, &triggerLoop{})
	}
	tl := v.(*triggerLoop)
	tl.pending.Store(true)
	if tl.running.CompareAndSwap(false, true) {
		go s.runTrigger(dirID, tl)
	}
}

// triggerGap is how long the trigger loop waits before sending the next
// trigger of a burst.
const triggerGap = 2 * time.Millisecond

type triggerLoop struct {
	pending  atomic.Bool
	running  atomic.Bool
	lastSync time.Time
}

// runTrigger sends one trigger per burst: every write sets pending before
// the loop's next swap, so each write is followed by a trigger that starts
// after it committed.
func (s *Server) runTrigger(dirID string, tl *triggerLoop) {
	for {
		for tl.pending.Swap(false) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if s.opt.Trigger != nil {
				if err := s.opt.Trigger(ctx, dirID); err != nil {
					s.log.Warn("trigger reconcile", "directory", dirID, "err", err)
				}
			}
			if time.Since(tl.lastSync) > time.Second {
				tl.lastSync = time.Now()
				if err := s.opt.Store.TouchDirectorySync(ctx, dirID, tl.lastSync); err != nil {
					s.log.Warn("record sync time", "directory", dirID, "err", err)
				}
			}
			cancel()
			if tl.pending.Load() {
				// Writes kept coming while the trigger was sent: let a
				// few more gather into the next one. Each trigger costs
				// a queue round trip (a Lua script on Redis), and during
				// a burst it mostly merges into a run that is already
				// queued, so fewer triggers lose nothing.
				time.Sleep(triggerGap)
			}
		}
		tl.running.Store(false)
		// A write may have set pending after the last swap but before
		// running was cleared: take the loop again if so.
		if !tl.pending.Load() || !tl.running.CompareAndSwap(false, true) {
			return
		}
	}
}
