package queue

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A delivery run that ends with a retry time runs again at that time, and
// not before; one that ends "again now" runs again at once.
func TestDeliverRetryAtSchedulesNextRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, nil)
		var mu sync.Mutex
		var runs []time.Time
		delay := 400 * time.Millisecond
		startWorker(t, q, Handlers{Deliver: func(_ context.Context, id string) (time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			runs = append(runs, time.Now())
			switch len(runs) {
			case 1:
				return time.Now().Add(delay), nil // a failed attempt: retry later
			case 2:
				return time.Now(), nil // a backlog left at the run's bound
			}
			return time.Time{}, nil
		}})
		if err := q.TriggerDeliver(context.Background(), "ep1"); err != nil {
			t.Fatal(err)
		}
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(runs) }
		waitFor(t, 5*time.Second, "three runs", func() bool { return count() >= 3 })
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != 3 {
			t.Fatalf("runs: got %d, want 3", len(runs))
		}
		if gap := runs[1].Sub(runs[0]); gap < delay-10*time.Millisecond {
			t.Errorf("retry ran %v after the failed run, want at least %v", gap, delay)
		}
		if gap := runs[2].Sub(runs[1]); gap > 300*time.Millisecond {
			t.Errorf("an \"again now\" run came %v later, want at once", gap)
		}
	})
}

// A trigger while a retry waits runs at once (an admin's enable or replay
// must not wait behind a retry scheduled for later), and delayed triggers
// for one instant collapse.
func TestDeliverTriggerBeatsScheduledRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, nil)
		rec := newRecorder()
		startWorker(t, q, Handlers{Deliver: func(ctx context.Context, id string) (time.Time, error) {
			return time.Time{}, rec.handle(ctx, id)
		}})
		ctx := context.Background()
		at := time.Now().Add(time.Hour)
		for range 3 {
			if err := q.TriggerDeliverAt(ctx, "ep1", at); err != nil {
				t.Fatal(err)
			}
		}
		if _, all := depth(t, q, queueDeliver); all != 1 {
			t.Errorf("delayed triggers for one instant: %d tasks, want 1", all)
		}
		if err := q.TriggerDeliver(ctx, "ep1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "the immediate run", func() bool { return rec.count("ep1") == 1 })
	})
}

// A slow endpoint holds one delivery slot; another endpoint's run is not
// delayed by it.
func TestDeliverEndpointsIsolated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, nil)
		release := make(chan struct{})
		fast := make(chan struct{}, 1)
		startWorker(t, q, Handlers{Deliver: func(ctx context.Context, id string) (time.Time, error) {
			if id == "slow" {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return time.Time{}, nil
			}
			fast <- struct{}{}
			return time.Time{}, nil
		}})
		defer close(release)
		ctx := context.Background()
		if err := q.TriggerDeliver(ctx, "slow"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if err := q.TriggerDeliver(ctx, "fast"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fast:
		case <-time.After(2 * time.Second):
			t.Fatal("the fast endpoint's run waited behind the slow one")
		}
	})
}
