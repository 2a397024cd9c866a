package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// kindCase is one task type with its trigger method and Handlers field.
type kindCase struct {
	name     string
	k        kind
	trigger  func(q *Queue, ctx context.Context, id string) error
	handlers func(fn func(context.Context, string) error) Handlers
}

var kindCases = []kindCase{
	{"reconcile", kindReconcile, (*Queue).TriggerReconcile,
		func(fn func(context.Context, string) error) Handlers { return Handlers{Reconcile: fn} }},
	{"poll", kindPoll, (*Queue).EnqueuePoll,
		func(fn func(context.Context, string) error) Handlers { return Handlers{Poll: fn} }},
	{"deliver", kindDeliver, (*Queue).TriggerDeliver,
		func(fn func(context.Context, string) error) Handlers {
			return Handlers{Deliver: func(ctx context.Context, id string) (time.Time, error) { return time.Time{}, fn(ctx, id) }}
		}},
}

// recorder counts handler runs per key and detects concurrent runs of one key.
type recorder struct {
	mu         sync.Mutex
	runs       map[string]int
	inflight   map[string]int
	lastStart  map[string]time.Time
	overlaps   atomic.Int64
	total      atomic.Int64
	onRun      func(ctx context.Context, id string, n int) error // n = run number for id, from 1
	busyFor    func() time.Duration
	maxOverlap int
}

func newRecorder() *recorder {
	return &recorder{runs: map[string]int{}, inflight: map[string]int{}, lastStart: map[string]time.Time{}}
}

func (r *recorder) handle(ctx context.Context, id string) error {
	r.mu.Lock()
	r.runs[id]++
	n := r.runs[id]
	r.inflight[id]++
	if r.inflight[id] > 1 {
		r.overlaps.Add(1)
	}
	r.lastStart[id] = time.Now()
	r.mu.Unlock()
	r.total.Add(1)
	defer func() {
		r.mu.Lock()
		r.inflight[id]--
		r.mu.Unlock()
	}()
	if r.busyFor != nil {
		time.Sleep(r.busyFor())
	}
	if r.onRun != nil {
		return r.onRun(ctx, id, n)
	}
	return nil
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

// Semantics 1 and 2: triggers for a key that is queued merge into the queued task.
func TestTriggersMergeWhileQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		for _, kc := range kindCases {
			t.Run(kc.name, func(t *testing.T) {
				env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
				q := env.open(t, nil)
				ctx := context.Background()
				const keys, triggersPerKey = 10, 20
				var wg sync.WaitGroup
				for i := range keys {
					for range triggersPerKey {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if err := kc.trigger(q, ctx, fmt.Sprintf("k%d", i)); err != nil {
								t.Errorf("trigger: %v", err)
							}
						}()
					}
				}
				wg.Wait()
				if got, _ := depth(t, q, kc.k.queue); got != keys {
					t.Fatalf("pending tasks after %d triggers on each of %d keys: got %d, want %d", triggersPerKey, keys, got, keys)
				}

				rec := newRecorder()
				startWorker(t, q, kc.handlers(rec.handle))
				waitFor(t, 5*time.Second, "every key to run", func() bool { return rec.total.Load() >= keys })
				time.Sleep(200 * time.Millisecond) // room for a wrong extra run
				for i := range keys {
					if got := rec.count(fmt.Sprintf("k%d", i)); got != 1 {
						t.Errorf("runs of k%d: got %d, want 1", i, got)
					}
				}
				waitFor(t, 2*time.Second, "the state key to go idle", func() bool {
					return len(stateOf(t, q, kc.k, "k0")) == 0
				})
			})
		}
	})
}

// Semantics 3: any number of triggers during a run cause exactly one follow-up run.
func TestTriggersDuringRunCauseExactlyOneFollowUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		for _, kc := range kindCases {
			t.Run(kc.name, func(t *testing.T) {
				env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
				q := env.open(t, nil)
				ctx := context.Background()
				started, release := make(chan struct{}), make(chan struct{})
				rec := newRecorder()
				rec.onRun = func(_ context.Context, _ string, n int) error {
					if n == 1 {
						close(started)
						<-release
					}
					return nil
				}
				startWorker(t, q, kc.handlers(rec.handle))
				if err := kc.trigger(q, ctx, "d1"); err != nil {
					t.Fatal(err)
				}
				<-started
				var wg sync.WaitGroup
				for range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := kc.trigger(q, ctx, "d1"); err != nil {
							t.Errorf("trigger: %v", err)
						}
					}()
				}
				wg.Wait()
				if _, all := depth(t, q, kc.k.queue); all != 1 {
					t.Errorf("tasks queued or running during the run: got %d, want 1 (the running one)", all)
				}
				if got := stateOf(t, q, kc.k, "d1")["s"]; got != "d" {
					t.Errorf("state during run after triggers: got %q, want %q", got, "d")
				}
				close(release)
				waitFor(t, 5*time.Second, "the follow-up run", func() bool { return rec.count("d1") >= 2 })
				time.Sleep(300 * time.Millisecond)
				if got := rec.count("d1"); got != 2 {
					t.Errorf("runs: got %d, want 2 (the run and one follow-up)", got)
				}
				if got := rec.overlaps.Load(); got != 0 {
					t.Errorf("overlapping runs: got %d, want 0", got)
				}
			})
		}
	})
}

// Semantics 4: several Queue instances (as separate processes) on one Redis never run one
// key concurrently, and never drop a trigger.
func TestNoConcurrentRunsAcrossWorkers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		const workers, keys = 3, 12
		duration := 1500 * time.Millisecond
		rec := newRecorder()
		rec.busyFor = func() time.Duration { return time.Duration(rand.IntN(3000)) * time.Microsecond }
		var qs []*Queue
		for range workers {
			q := env.open(t, func(c *Config) { c.Concurrency = 6 })
			qs = append(qs, q)
			startWorker(t, q, Handlers{Reconcile: rec.handle})
		}
		var (
			mu          sync.Mutex
			lastTrigger = map[string]time.Time{}
			triggers    atomic.Int64
		)
		ctx := context.Background()
		deadline := time.Now().Add(duration)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := qs[g%workers]
				for time.Now().Before(deadline) {
					id := fmt.Sprintf("dir%d", rand.IntN(keys))
					called := time.Now()
					if err := q.TriggerReconcile(ctx, id); err != nil {
						t.Errorf("trigger: %v", err)
						return
					}
					triggers.Add(1)
					mu.Lock()
					if called.After(lastTrigger[id]) {
						lastTrigger[id] = called
					}
					mu.Unlock()
					time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
				}
			}()
		}
		wg.Wait()
		waitFor(t, 10*time.Second, "the queue to drain", func() bool {
			_, all := depth(t, qs[0], queueRealtime)
			return all == 0
		})
		if got := rec.overlaps.Load(); got != 0 {
			t.Errorf("concurrent runs of one directory: got %d, want 0", got)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for id, tr := range lastTrigger {
			if !rec.lastStart[id].After(tr) {
				t.Errorf("%s: last run started %v, before its last trigger %v: trigger dropped", id, rec.lastStart[id], tr)
			}
		}
		t.Logf("%s: %d triggers, %d runs over %d workers", env.name, triggers.Load(), rec.total.Load(), workers)
	})
}

// Semantics 5, handler errors: a failing handler is retried; once retries are exhausted the
// key is idle again and a later trigger runs.
func TestHandlerErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		tests := []struct {
			name      string
			maxRetry  int
			failRuns  int // the first failRuns runs fail
			panics    bool
			wantRuns  int // before the later trigger
			wantState string
		}{
			{name: "retried until success", maxRetry: 5, failRuns: 2, wantRuns: 3},
			{name: "panic is retried", maxRetry: 5, failRuns: 1, panics: true, wantRuns: 2},
			{name: "retries exhausted", maxRetry: 2, failRuns: 1000, wantRuns: 3},
			{name: "no retries", maxRetry: -1, failRuns: 1000, wantRuns: 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
				q := env.open(t, func(c *Config) { c.MaxRetry = tt.maxRetry })
				rec := newRecorder()
				rec.onRun = func(_ context.Context, _ string, n int) error {
					if n <= tt.failRuns {
						if tt.panics {
							panic("boom")
						}
						return errors.New("boom")
					}
					return nil
				}
				startWorker(t, q, Handlers{Reconcile: rec.handle})
				ctx := context.Background()
				if err := q.TriggerReconcile(ctx, "d1"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 5*time.Second, fmt.Sprintf("%d runs", tt.wantRuns), func() bool { return rec.count("d1") >= tt.wantRuns })
				waitFor(t, 5*time.Second, "the key to go idle", func() bool { return len(stateOf(t, q, kindReconcile, "d1")) == 0 })
				time.Sleep(200 * time.Millisecond)
				if got := rec.count("d1"); got != tt.wantRuns {
					t.Fatalf("runs: got %d, want %d", got, tt.wantRuns)
				}
				// Not wedged: a later trigger runs again.
				if err := q.TriggerReconcile(ctx, "d1"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 5*time.Second, "a run after a later trigger", func() bool { return rec.count("d1") > tt.wantRuns })
			})
		}
	})
}

// Semantics 5, lost state: nothing wedges when Redis loses its state or a worker dies.
func TestRecoversFromLostState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		ctx := context.Background()

		t.Run("state lost while queued", func(t *testing.T) {
			env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
			q := env.open(t, nil)
			if err := q.TriggerReconcile(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
			env.lose(t)
			rec := newRecorder()
			startWorker(t, q, Handlers{Reconcile: rec.handle})
			if err := q.TriggerReconcile(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "a run after the state loss", func() bool { return rec.count("d1") == 1 })
		})

		t.Run("state lost while running", func(t *testing.T) {
			env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
			q := env.open(t, func(c *Config) { c.RunTTL = 600 * time.Millisecond })
			started, release := make(chan struct{}), make(chan struct{})
			rec := newRecorder()
			rec.onRun = func(_ context.Context, _ string, n int) error {
				if n == 1 {
					close(started)
					<-release
				}
				return nil
			}
			startWorker(t, q, Handlers{Reconcile: rec.handle})
			if err := q.TriggerReconcile(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
			<-started
			env.lose(t)
			// The heartbeat re-asserts the running state, so a trigger now becomes a follow-up
			// instead of a concurrent run.
			waitFor(t, 2*time.Second, "the heartbeat to re-assert the running state", func() bool {
				return stateOf(t, q, kindReconcile, "d1")["s"] == "r"
			})
			if err := q.TriggerReconcile(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
			close(release)
			waitFor(t, 5*time.Second, "the follow-up run", func() bool { return rec.count("d1") == 2 })
			waitFor(t, 2*time.Second, "the key to go idle", func() bool { return len(stateOf(t, q, kindReconcile, "d1")) == 0 })
			if got := rec.overlaps.Load(); got != 0 {
				t.Errorf("overlapping runs: got %d, want 0", got)
			}
		})

		t.Run("stale running key of a killed worker", func(t *testing.T) {
			env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
			const runTTL = 700 * time.Millisecond
			q := env.open(t, func(c *Config) { c.RunTTL = runTTL })
			rec := newRecorder()
			startWorker(t, q, Handlers{Reconcile: rec.handle})
			key := q.stateKey(kindReconcile, "d1")
			written := time.Now()
			if err := q.rdb.HSet(ctx, key, "s", "r", "t", "dead-task", "run", "dead-run").Err(); err != nil {
				t.Fatal(err)
			}
			if err := q.rdb.PExpire(ctx, key, runTTL).Err(); err != nil {
				t.Fatal(err)
			}
			// Callers re-trigger periodically; the first triggers merge into the dead run.
			waitFor(t, runTTL+2*time.Second, "a run once the stale key expired", func() bool {
				if err := q.TriggerReconcile(ctx, "d1"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(30 * time.Millisecond)
				return rec.count("d1") > 0
			})
			if took := time.Since(written); took < runTTL/2 {
				t.Errorf("ran %v after the stale key was written, before its TTL %v: the dead run was ignored", took, runTTL)
			}
		})

		t.Run("queued key whose task was never enqueued", func(t *testing.T) {
			env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
			q := env.open(t, nil)
			rec := newRecorder()
			startWorker(t, q, Handlers{Reconcile: rec.handle})
			key := q.stateKey(kindReconcile, "d1")
			old := time.Now().Add(-time.Hour).UnixMilli()
			if err := q.rdb.HSet(ctx, key, "s", "q", "t", "ghost-task", "at", old).Err(); err != nil {
				t.Fatal(err)
			}
			if err := q.TriggerReconcile(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "a run", func() bool { return rec.count("d1") == 1 })
		})
	})
}

// Slow polls never take the slots reconciles need.
func TestPollsDoNotStarveReconciles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, func(c *Config) { c.Concurrency, c.PollConcurrency = 1, 1 })
		release := make(chan struct{})
		var polls atomic.Int64
		reconciled := make(chan struct{}, 1)
		startWorker(t, q, Handlers{
			Poll: func(context.Context, string) error { polls.Add(1); <-release; return nil },
			Reconcile: func(context.Context, string) error {
				reconciled <- struct{}{}
				return nil
			},
		})
		defer close(release)
		ctx := context.Background()
		for i := range 5 {
			if err := q.EnqueuePoll(ctx, fmt.Sprintf("p%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 2*time.Second, "a poll to be running", func() bool { return polls.Load() == 1 })
		if err := q.TriggerReconcile(ctx, "d1"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-reconciled:
		case <-time.After(2 * time.Second):
			t.Fatal("reconcile did not run while polls occupied the poll worker")
		}
	})
}

// RunWorker shuts down gracefully: a running handler finishes, with its context intact.
func TestRunWorkerGracefulShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, nil)
		started := make(chan struct{})
		var ctxErr atomic.Value
		var finished atomic.Bool
		stop := startWorker(t, q, Handlers{Reconcile: func(ctx context.Context, _ string) error {
			close(started)
			time.Sleep(300 * time.Millisecond)
			ctxErr.Store(fmt.Sprint(ctx.Err()))
			finished.Store(true)
			return nil
		}})
		if err := q.TriggerReconcile(context.Background(), "d1"); err != nil {
			t.Fatal(err)
		}
		<-started
		stop()
		if !finished.Load() {
			t.Fatal("RunWorker returned before the running handler finished")
		}
		if got := ctxErr.Load(); got != "<nil>" {
			t.Errorf("handler ctx.Err() during graceful shutdown: got %v, want <nil>", got)
		}
		if got := stateOf(t, q, kindReconcile, "d1"); len(got) != 0 {
			t.Errorf("state after the run: got %v, want idle", got)
		}
	})
}

func TestLeaderElection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		var leaders, overlaps atomic.Int64
		var current atomic.Int64 // id of the leader, 0 = none
		type candidate struct {
			q      *Queue
			cancel context.CancelFunc
			done   chan struct{}
		}
		var cands []*candidate
		for i := 1; i <= 2; i++ {
			q := env.open(t, nil)
			ctx, cancel := context.WithCancel(context.Background())
			c := &candidate{q: q, cancel: cancel, done: make(chan struct{})}
			cands = append(cands, c)
			go func() {
				defer close(c.done)
				err := q.Lead(ctx, "scheduler", func(ctx context.Context) {
					if leaders.Add(1) > 1 {
						overlaps.Add(1)
					}
					current.Store(int64(i))
					<-ctx.Done()
					current.CompareAndSwap(int64(i), 0)
					leaders.Add(-1)
				})
				if err != nil {
					t.Errorf("Lead: %v", err)
				}
			}()
			t.Cleanup(func() { cancel(); <-c.done })
		}
		waitFor(t, 3*time.Second, "a leader", func() bool { return current.Load() != 0 })
		time.Sleep(500 * time.Millisecond) // a few renewals: the other must stay standby
		first := current.Load()
		if got := leaders.Load(); got != 1 {
			t.Fatalf("leaders: got %d, want 1", got)
		}
		cands[first-1].cancel()
		<-cands[first-1].done
		waitFor(t, 2*time.Second, "the standby to take over", func() bool {
			c := current.Load()
			return c != 0 && c != first
		})
		if got := overlaps.Load(); got != 0 {
			t.Errorf("moments with two leaders: got %d, want 0", got)
		}
	})
}

func TestLeaderLeaseLost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var terms atomic.Int64
		lost := make(chan time.Time, 10)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = q.Lead(ctx, "scheduler", func(ctx context.Context) {
				terms.Add(1)
				<-ctx.Done()
				lost <- time.Now()
			})
		}()
		defer func() { cancel(); <-done }()
		waitFor(t, 3*time.Second, "leadership", func() bool { return terms.Load() == 1 })
		// Another process steals the lease (as after a long pause of this one).
		key := env.ns + ":leader:scheduler"
		stolen := time.Now()
		if err := q.rdb.Set(context.Background(), key, "someone-else", 700*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-lost:
			ttl := q.cfg.LeaderLeaseTTL
			if took := at.Sub(stolen); took > ttl {
				t.Errorf("fn cancelled %v after the lease was lost, want within the lease TTL %v", took, ttl)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("fn's context was not cancelled after the lease was lost")
		}
		// Once the thief's lease expires, we lead again.
		waitFor(t, 3*time.Second, "leadership again", func() bool { return terms.Load() == 2 })
	})
}

func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		q := env.open(t, nil)
		reg := prometheus.NewRegistry()
		for _, c := range q.Collectors() {
			if err := reg.Register(c); err != nil {
				t.Fatalf("Register: %v", err)
			}
		}
		ctx := context.Background()
		for range 3 {
			if err := q.TriggerReconcile(ctx, "d1"); err != nil {
				t.Fatal(err)
			}
		}
		var ran atomic.Int64
		startWorker(t, q, Handlers{Reconcile: func(context.Context, string) error { ran.Add(1); return nil }})
		waitFor(t, 3*time.Second, "a run", func() bool { return ran.Load() == 1 })
		waitFor(t, 3*time.Second, "success to be counted", func() bool {
			return metricValue(t, reg, "roster_queue_tasks_total", map[string]string{"type": "reconcile", "result": "success"}) == 1
		})
		tests := []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"roster_queue_triggers_total", map[string]string{"type": "reconcile"}, 3},
			{"roster_queue_trigger_merged_total", map[string]string{"type": "reconcile"}, 2},
			{"roster_queue_tasks_enqueued_total", map[string]string{"type": "reconcile"}, 1},
			{"roster_queue_task_duration_seconds", map[string]string{"type": "reconcile"}, 1}, // sample count
			{"roster_queue_task_wait_seconds", map[string]string{"type": "reconcile"}, 1},
			{"roster_queue_depth", map[string]string{"queue": "realtime", "state": "pending"}, 0},
		}
		for _, tt := range tests {
			if got := metricValue(t, reg, tt.name, tt.labels); got != tt.want {
				t.Errorf("%s%v: got %v, want %v", tt.name, tt.labels, got, tt.want)
			}
		}
	})
}

// metricValue returns a counter or gauge value, or a histogram's sample count; -1 if absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func TestRedisURLs(t *testing.T) {
	tests := []struct {
		url      string
		wantAddr string
		wantErr  string
		redacted string
	}{
		{url: "redis://127.0.0.1:6379/15", wantAddr: "127.0.0.1:6379", redacted: "redis://127.0.0.1:6379/15"},
		{url: "redis://:s3cret@db.internal:6380/2", wantAddr: "db.internal:6380", redacted: "redis://:xxxxx@db.internal:6380/2"},
		{url: "rediss://user:s3cret@db.internal/0", wantAddr: "db.internal:6379", redacted: "rediss://user:xxxxx@db.internal/0"},
		{url: "redis-sentinel://:s3cret@s1:26379,s2:26379/1?master=mymaster&sentinel_password=t0p",
			wantAddr: "sentinel:mymaster@s1:26379,s2:26379",
			redacted: "redis-sentinel://:xxxxx@s1:26379,s2:26379/1?master=mymaster&sentinel_password=xxxxx"},
		{url: "redis-sentinel://s1,s2", wantErr: "master"},
		{url: "redis://:s3cret@db/notanumber", wantErr: "parse redis url"},
		{url: "http://:s3cret@db", wantErr: "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if tt.redacted != "" {
				if got := RedactURL(tt.url); got != tt.redacted {
					t.Errorf("RedactURL: got %q, want %q", got, tt.redacted)
				}
			}
			rdb, addr, err := newRedisClient(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("newRedisClient: %v", err)
			}
			defer rdb.Close()
			if addr != tt.wantAddr {
				t.Errorf("addr: got %q, want %q", addr, tt.wantAddr)
			}
		})
	}
}

func TestOpenUnreachableRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	q, err := Open(ctx, Config{RedisURL: "redis://:s3cret@127.0.0.1:1/0", Logger: testLogger()})
	if err == nil {
		q.Close()
		t.Fatal("Open: got nil error for an unreachable Redis")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestEmbeddedPingAndAddr(t *testing.T) {
	q, err := Open(context.Background(), Config{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if got := q.RedisAddr(); got != "embedded" {
		t.Errorf("RedisAddr: got %q, want %q", got, "embedded")
	}
}
