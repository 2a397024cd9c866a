package e2e

import (
	"sync/atomic"

	"github.com/roster-dev/roster/app"
	"testing"
	"time"
)

// TestTriggerDuringRunIsNotLost pushes a change while a reconcile of the same
// directory is running and checks it reaches the roster through exactly the
// follow-up run.
func TestTriggerDuringRunIsNotLost(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			var inRun atomic.Int32
			entered := make(chan struct{}, 16)
			release := make(chan struct{})
			var holding atomic.Bool
			r := StartHooked(t, m, func(a *app.App) {
				a.Reconciler.BeforeApply = func(string) {
					inRun.Add(1)
					if holding.Load() {
						entered <- struct{}{}
						<-release
					}
				}
			})
			dir := r.NewSCIMTeam(nil)
			holding.Store(true)
			if resp := r.SCIM(dir, "POST", "/Users", map[string]any{"userName": "first@example.com"}); resp.Status != 201 {
				t.Fatalf("create = %s", resp)
			}
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("no reconcile started")
			}
			// The first reconcile is now running (held). A change arrives.
			done := make(chan *Response, 1)
			go func() { done <- r.SCIM(dir, "POST", "/Users", map[string]any{"userName": "second@example.com"}) }()
			if m.Name != "embedded" {
				// On PostgreSQL the write does not wait for the held run.
				if resp := <-done; resp.Status != 201 {
					t.Fatalf("create during run = %s", resp)
				}
			}
			time.Sleep(200 * time.Millisecond)
			runsBefore := inRun.Load()
			holding.Store(false)
			close(release)
			if m.Name == "embedded" {
				if resp := <-done; resp.Status != 201 {
					t.Fatalf("create during run = %s", resp)
				}
			}
			r.WaitRoster(dir.TeamID, "first@example.com", "second@example.com")
			if runsBefore != 1 {
				t.Fatalf("%d runs had started before the hold was released, want 1 (one reconcile per directory at a time)", runsBefore)
			}
		})
	}
}
