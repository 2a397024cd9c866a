package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Benchmarks run with the production defaults (Config zero value), against the embedded
// miniredis and, when ROSTER_TEST_REDIS_URL is set, a real Redis:
//
//	ROSTER_TEST_REDIS_URL=redis://127.0.0.1:6379/15 go test -run '^$' -bench . -benchtime 400x ./queue/
//
// (BenchmarkIdleCPU measures a fixed 5 s window whatever -benchtime says.)

// benchEnv returns a fresh env (own namespace, own embedded server) per benchmark run.
func benchEnv(b *testing.B, e *testEnv) (*testEnv, *Queue) {
	env := &testEnv{name: e.name, url: e.url, ns: testNamespace()}
	q := env.open(b, func(c *Config) {
		*c = Config{RedisURL: env.url, Namespace: env.ns, Logger: testLogger()}
	})
	return env, q
}

// BenchmarkTriggerToHandlerStart measures the latency from a TriggerReconcile call to its
// handler starting, on an idle worker; triggers arrive at random moments (0–50 ms apart) so
// they hit every phase of the worker's poll loop.
func BenchmarkTriggerToHandlerStart(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, e *testEnv) {
		_, q := benchEnv(b, e)
		started := make(chan time.Time, 1)
		startWorker(b, q, Handlers{Reconcile: func(context.Context, string) error {
			started <- time.Now()
			return nil
		}})
		time.Sleep(100 * time.Millisecond)
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			time.Sleep(time.Duration(rand.IntN(50_000)) * time.Microsecond)
			t0 := time.Now()
			if err := q.TriggerReconcile(ctx, "dir-"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
			select {
			case t1 := <-started:
				lat = append(lat, t1.Sub(t0))
			case <-time.After(10 * time.Second):
				b.Fatal("handler did not start within 10s")
			}
		}
		b.StopTimer()
		reportPercentiles(b, lat)
	})
}

// BenchmarkTriggerCall measures the cost of one TriggerReconcile call as seen by the caller
// (e.g. a SCIM request handler): "new" enqueues a task for a new key; "merge" hits a key that
// is already queued. No worker runs.
func BenchmarkTriggerCall(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, e *testEnv) {
		b.Run("new", func(b *testing.B) {
			_, q := benchEnv(b, e)
			ctx := context.Background()
			var n atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.TriggerReconcile(ctx, "dir-"+strconv.FormatInt(n.Add(1), 10)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("merge", func(b *testing.B) {
			_, q := benchEnv(b, e)
			ctx := context.Background()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.TriggerReconcile(ctx, "dir-1"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	})
}

// BenchmarkThroughput measures end-to-end task throughput: b.N reconciles of distinct
// directories triggered by 8 goroutines, processed by one worker (default concurrency 8)
// with a no-op handler, until all have run.
func BenchmarkThroughput(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, e *testEnv) {
		_, q := benchEnv(b, e)
		var ran atomic.Int64
		all := make(chan struct{})
		target := int64(b.N)
		startWorker(b, q, Handlers{Reconcile: func(context.Context, string) error {
			if ran.Add(1) == target {
				close(all)
			}
			return nil
		}})
		time.Sleep(100 * time.Millisecond)
		ctx := context.Background()
		var next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > target {
						return
					}
					if err := q.TriggerReconcile(ctx, "dir-"+strconv.FormatInt(i, 10)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case <-all:
		case <-time.After(60 * time.Second):
			b.Fatalf("only %d of %d tasks ran within 60s", ran.Load(), target)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
	})
}

// BenchmarkIdleCPU measures the CPU an idle worker (reconcile and poll servers, defaults)
// costs over 5 s: this process (including the embedded miniredis) and, for a real Redis on
// this machine, the redis-server process.
func BenchmarkIdleCPU(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, e *testEnv) {
		_, q := benchEnv(b, e)
		startWorker(b, q, Handlers{
			Reconcile: func(context.Context, string) error { return nil },
			Poll:      func(context.Context, string) error { return nil },
		})
		time.Sleep(500 * time.Millisecond)
		redisPID := 0
		if e.url != "" {
			if info, err := q.rdb.Info(context.Background(), "server").Result(); err == nil {
				for _, line := range strings.Split(info, "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
						redisPID, _ = strconv.Atoi(v)
					}
				}
			}
		}
		const window = 5 * time.Second
		b.ResetTimer()
		self0, redis0, t0 := selfCPU(), procCPU(redisPID), time.Now()
		time.Sleep(window)
		self1, redis1, wall := selfCPU(), procCPU(redisPID), time.Since(t0)
		b.StopTimer()
		b.ReportMetric(100*float64(self1-self0)/float64(wall), "proc-cpu-%")
		if redisPID != 0 && redis0 >= 0 && redis1 >= 0 {
			b.ReportMetric(100*float64(redis1-redis0)/float64(wall), "redis-cpu-%")
		}
	})
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads utime+stime of a process from /proc (Linux); -1 if unknown.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return -1
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.90)), "p90-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(0, "ns/op") // dominated by the idle gaps between triggers
}
