package queue

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Environment variables of the real-Redis test variant.
const (
	envRedisURL        = "ROSTER_TEST_REDIS_URL"        // e.g. redis://127.0.0.1:6379/15
	envRequireServices = "ROSTER_TEST_REQUIRE_SERVICES" // "1": a missing/unreachable Redis fails
)

// testEnv is one backend (embedded miniredis or a real Redis) with a namespace private to one
// test. Every Queue it opens shares that Redis, like separate processes would.
type testEnv struct {
	name string
	url  string // "" = embedded
	ns   string
	mr   *miniredis.Miniredis // embedded: the server of the first Queue opened
	rdb  redis.UniversalClient
}

// forEachBackend runs fn as a subtest against the embedded miniredis and against the real
// Redis named by ROSTER_TEST_REDIS_URL.
func forEachBackend(t *testing.T, fn func(t *testing.T, env *testEnv)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		fn(t, &testEnv{name: "embedded", ns: testNamespace()})
	})
	t.Run("redis", func(t *testing.T) {
		url := realRedisURL(t)
		env := &testEnv{name: "redis", url: url, ns: testNamespace()}
		fn(t, env)
	})
}

// forEachBackendB is forEachBackend for benchmarks.
func forEachBackendB(b *testing.B, fn func(b *testing.B, env *testEnv)) {
	b.Helper()
	b.Run("embedded", func(b *testing.B) {
		fn(b, &testEnv{name: "embedded", ns: testNamespace()})
	})
	b.Run("redis", func(b *testing.B) {
		url := realRedisURL(b)
		fn(b, &testEnv{name: "redis", url: url, ns: testNamespace()})
	})
}

var (
	realRedisOnce sync.Once
	realRedisErr  error
)

// realRedisURL returns ROSTER_TEST_REDIS_URL, skipping the test when it is unset, and failing
// when ROSTER_TEST_REQUIRE_SERVICES=1 and it is unset, or whenever it is set but unreachable.
func realRedisURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(envRedisURL)
	if url == "" {
		if os.Getenv(envRequireServices) == "1" {
			t.Fatalf("%s=1 but %s is not set", envRequireServices, envRedisURL)
		}
		t.Skipf("%s not set; skipping the real-Redis variant", envRedisURL)
	}
	realRedisOnce.Do(func() {
		rdb, _, err := newRedisClient(url)
		if err != nil {
			realRedisErr = err
			return
		}
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		realRedisErr = rdb.Ping(ctx).Err()
	})
	if realRedisErr != nil {
		t.Fatalf("%s=%s unreachable: %v", envRedisURL, RedactURL(url), realRedisErr)
	}
	return url
}

func testNamespace() string { return "rostertest-" + newToken() }

func testLogger() *slog.Logger {
	if os.Getenv("ROSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig is a Config with intervals short enough for tests.
func (env *testEnv) fastConfig() Config {
	return Config{
		RedisURL:                 env.url,
		Namespace:                env.ns,
		TaskCheckInterval:        10 * time.Millisecond,
		PollTaskCheckInterval:    10 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryBaseDelay:           20 * time.Millisecond,
		MaxRetryDelay:            100 * time.Millisecond,
		ShutdownTimeout:          3 * time.Second,
		RunTTL:                   3 * time.Second,
		LeaderLeaseTTL:           600 * time.Millisecond,
		Logger:                   testLogger(),
	}
}

// open opens a Queue on the env's Redis with fastConfig changed by mut; it is closed at the
// end of the test. The first Queue of an embedded env owns the miniredis.
func (env *testEnv) open(t testing.TB, mut func(*Config)) *Queue {
	t.Helper()
	cfg := env.fastConfig()
	if mut != nil {
		mut(&cfg)
	}
	if env.url == "" && env.mr != nil {
		cfg.shared = env.mr
	}
	q, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", env.name, err)
	}
	if env.rdb == nil {
		env.rdb = q.rdb
		env.mr = q.mr
		if env.url != "" {
			t.Cleanup(func() { env.deleteKeys(t) })
		}
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

// lose simulates losing all Redis state: FLUSHALL for the embedded server; on a shared real
// Redis, deleting every key of this test's namespace (including its Asynq queues), which is
// the same from the test's point of view and leaves other tests alone.
func (env *testEnv) lose(t testing.TB) {
	t.Helper()
	if env.url == "" {
		env.mr.FlushAll()
		return
	}
	env.deleteKeys(t)
}

func (env *testEnv) deleteKeys(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	rdb, _, err := newRedisClient(env.url) // env.rdb may be closed already
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer rdb.Close()
	for _, pattern := range []string{env.ns + ":*", "asynq:{" + env.ns + ":*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup scan: %v", err)
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("cleanup del: %v", err)
			}
			keys = keys[n:]
		}
	}
	rdb.SRem(ctx, "asynq:queues", env.ns+":"+queueRealtime, env.ns+":"+queuePoll)
}

// startWorker runs q.RunWorker(h) until the end of the test (or until the returned stop is
// called, which waits for RunWorker to return).
func startWorker(t testing.TB, q *Queue, h Handlers) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.RunWorker(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("RunWorker: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("RunWorker did not return 15s after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stateOf returns the state hash of a key ("" fields when idle).
func stateOf(t testing.TB, q *Queue, k kind, id string) map[string]string {
	t.Helper()
	m, err := q.rdb.HGetAll(context.Background(), q.stateKey(k, id)).Result()
	if err != nil {
		t.Fatalf("HGETALL state: %v", err)
	}
	return m
}

// depth returns pending+active+retry+scheduled tasks of a logical queue.
func depth(t testing.TB, q *Queue, logical string) (pending, all int) {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	for _, qs := range st.Queues {
		if qs.Queue == logical {
			return qs.Pending, qs.Pending + qs.Active + qs.Retry + qs.Scheduled
		}
	}
	t.Fatalf("Stats has no queue %q: %+v", logical, st)
	return 0, 0
}
