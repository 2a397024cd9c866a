// Package queue is roster's work queue: "directory X needs a reconcile", "directory X needs a
// poll", "webhook endpoint X needs a delivery run". It is the only package that imports Asynq.
//
// The queue has controller-runtime work-queue semantics on top of Asynq:
//
//   - at most one task per key (directory) is queued or running at any time;
//   - a trigger that arrives while a task for the key is queued merges into it;
//   - a trigger that arrives while the task runs causes exactly one follow-up run;
//   - this holds across any number of worker processes sharing one Redis.
//
// A per-key state machine kept in Redis and driven by Lua scripts gives these guarantees
// (Asynq's TaskID and Unique options reject a trigger while the task runs, which would lose
// it). State keys carry TTLs that are refreshed while a handler runs, so lost Redis state or a
// crashed worker never wedges a key for longer than the TTL. The store is the source of
// truth: a task says only "this key needs work", and callers re-trigger at start-up and
// periodically.
//
// Limits: if Redis loses its state while a handler runs, the handler's heartbeat re-asserts
// the running state within Config.RunTTL/3; a trigger in that window can start a second run
// of the same key, so handlers must stay safe to run concurrently in that rare case (the
// store's transactions are the last line). A task whose worker crashed returns through Asynq's
// 30 s lease and 1-minute recovery sweep (at most about 90 s), costing one retry.
//
// With an empty Config.RedisURL the queue runs on an in-process miniredis (one process only),
// reached over in-memory pipes (no listening socket); a ticker advances its TTL clock.
package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Config configures a Queue. The zero value (apart from Logger, which may be nil too) is a
// working embedded configuration with defaults tuned for real-time use.
type Config struct {
	// RedisURL selects the Redis server. Empty means an embedded, in-process miniredis that
	// lives as long as the Queue (single process only). Supported forms:
	//
	//	redis://[user:password@]host[:port][/db]
	//	rediss://[user:password@]host[:port][/db]            (TLS)
	//	redis-sentinel://[user:password@]host1:port[,host2:port...][/db]?master=name
	//
	// go-redis query options (dial_timeout=3s, ...) are accepted for redis:// and rediss://.
	// For Sentinel, user and password authenticate to the Redis master and replicas; the
	// optional query parameter sentinel_password authenticates to the sentinels.
	RedisURL string

	// Namespace prefixes every Redis key and Asynq queue name this package uses, so several
	// deployments or tests can share one Redis database. Default "roster".
	Namespace string

	// Concurrency is the number of reconcile handlers run at once by one RunWorker call.
	// Default 8.
	Concurrency int
	// PollConcurrency is the number of poll handlers run at once by one RunWorker call.
	// Polls run on their own Asynq server and queue, so slow polls never take a slot from a
	// reconcile. Default 4.
	PollConcurrency int
	// DeliverConcurrency is the number of webhook delivery runs (one
	// endpoint each) run at once by one RunWorker call, on their own
	// Asynq server and queue. Default 16.
	DeliverConcurrency int

	// TaskCheckInterval is how often an idle worker polls Redis for new tasks (Asynq
	// sleeps between half and one and a half times this value). It bounds trigger→handler
	// latency of an idle worker. Default 20ms (Asynq's default, 1s, is meant for batch jobs).
	TaskCheckInterval time.Duration
	// PollTaskCheckInterval is TaskCheckInterval for the poll queue. "Poll now" and an
	// incremental directory-API poll are expected to show in the roster within a fraction
	// of a second; an idle worker waits on average about this long. Default 50ms.
	PollTaskCheckInterval time.Duration
	// DelayedTaskCheckInterval is how often retries whose back-off has elapsed are moved
	// back to their queue. Default 250ms.
	DelayedTaskCheckInterval time.Duration

	// MaxRetry is how many times a failed handler is retried before the task is archived
	// (the key then goes back to idle, or to a follow-up if it was triggered meanwhile).
	// Default 5. Use a negative value for no retries.
	MaxRetry int
	// RetryBaseDelay is the back-off before the first retry; it doubles on every retry up to
	// MaxRetryDelay, with ±10% jitter. Default 1s.
	RetryBaseDelay time.Duration
	// MaxRetryDelay caps the retry back-off. Default 2m.
	MaxRetryDelay time.Duration
	// TaskTimeout is the deadline of one handler call. Default 30m.
	TaskTimeout time.Duration
	// ShutdownTimeout is how long RunWorker waits, once its context is done, for running
	// handlers to finish before it hands their tasks back to the queue. Default 10s.
	ShutdownTimeout time.Duration

	// RunTTL is the lifetime of a key's "running" state; a heartbeat refreshes it every
	// RunTTL/3 while the handler runs. After a worker crashes, its key frees itself within
	// RunTTL. Keep it at or below Asynq's 30s task lease. Default 30s.
	RunTTL time.Duration
	// QueuedTTL is the lifetime of a key's "queued" state, a backstop for lost tasks.
	// Default 10m.
	QueuedTTL time.Duration
	// QueuedCheckAfter: a trigger that finds its key queued for longer than this checks (at
	// most once per QueuedCheckAfter) that the Asynq task still exists, and re-enqueues it if
	// it does not (a process that died between marking a key queued and enqueueing).
	// Default 30s.
	QueuedCheckAfter time.Duration

	// LeaderLeaseTTL is the lifetime of a leader lease in Lead; the leader renews it every
	// LeaderLeaseTTL/3 and a standby tries to take it as often. Default 15s.
	LeaderLeaseTTL time.Duration

	// Logger receives structured logs. Default slog.Default(). The caller names the component
	// (roster's app adds component=queue); the queue adds no attribute of its own to it, so
	// that no key appears twice on a line.
	Logger *slog.Logger

	// shared, set by tests only, makes an embedded Queue connect to an existing miniredis
	// instead of starting its own, to model several processes on one Redis.
	shared *miniredis.Miniredis
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Namespace == "" {
		c.Namespace = "roster"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.PollConcurrency <= 0 {
		c.PollConcurrency = 4
	}
	if c.DeliverConcurrency <= 0 {
		c.DeliverConcurrency = 16
	}
	def(&c.TaskCheckInterval, 20*time.Millisecond)
	def(&c.PollTaskCheckInterval, 50*time.Millisecond)
	def(&c.DelayedTaskCheckInterval, 250*time.Millisecond)
	switch {
	case c.MaxRetry == 0:
		c.MaxRetry = 5
	case c.MaxRetry < 0:
		c.MaxRetry = 0
	}
	def(&c.RetryBaseDelay, time.Second)
	def(&c.MaxRetryDelay, 2*time.Minute)
	def(&c.TaskTimeout, 30*time.Minute)
	def(&c.ShutdownTimeout, 10*time.Second)
	def(&c.RunTTL, 30*time.Second)
	def(&c.QueuedTTL, 10*time.Minute)
	def(&c.QueuedCheckAfter, 30*time.Second)
	def(&c.LeaderLeaseTTL, 15*time.Second)
	c.RunTTL = max(c.RunTTL, 300*time.Millisecond)
	c.LeaderLeaseTTL = max(c.LeaderLeaseTTL, 300*time.Millisecond)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Queue is a connection to the work queue. It is safe for concurrent use. A process may call
// the trigger methods, RunWorker and Lead on the same Queue.
type Queue struct {
	cfg    Config
	log    *slog.Logger
	rdb    redis.UniversalClient
	client *asynq.Client
	insp   *asynq.Inspector
	addr   string
	m      *metrics

	mr       *miniredis.Miniredis // embedded server we own, or nil
	stopTick chan struct{}
	tickDone chan struct{}

	closeOnce sync.Once
}

// Open connects to Redis (or starts the embedded miniredis when cfg.RedisURL is empty) and
// checks the connection with a PING.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	q := &Queue{cfg: cfg, log: cfg.Logger}
	switch {
	case cfg.RedisURL == "" && cfg.shared != nil:
		q.addr = "embedded"
		q.rdb = embeddedClient(cfg.shared)
	case cfg.RedisURL == "":
		q.addr = "embedded"
		q.mr = miniredis.NewMiniRedis()
		q.rdb = embeddedClient(q.mr)
		// miniredis expires keys only when told to; advance its clock from the wall clock.
		q.stopTick = make(chan struct{})
		q.tickDone = make(chan struct{})
		go q.tick()
	default:
		rdb, addr, err := newRedisClient(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		q.rdb, q.addr = rdb, addr
	}
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		_ = q.Close()
		return nil, fmt.Errorf("queue: connect to redis %s: %w", q.addr, err)
	}
	q.client = asynq.NewClientFromRedisClient(q.rdb)
	q.insp = asynq.NewInspectorFromRedisClient(q.rdb)
	q.m = newMetrics(q)
	q.log.Info("queue opened", "redis", q.addr, "namespace", cfg.Namespace)
	return q, nil
}

// embeddedClient connects to a miniredis over in-memory pipes: no listening socket.
func embeddedClient(mr *miniredis.Miniredis) redis.UniversalClient {
	return redis.NewClient(&redis.Options{
		Addr: "embedded",
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			return mr.Dial()
		},
		DisableIdentity: true,
	})
}

// embeddedTick is how often the embedded miniredis's TTL clock is advanced.
const embeddedTick = 100 * time.Millisecond

func (q *Queue) tick() {
	defer close(q.tickDone)
	t := time.NewTicker(embeddedTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-q.stopTick:
			return
		case now := <-t.C:
			q.mr.FastForward(now.Sub(last))
			last = now
		}
	}
}

// newRedisClient builds a client for a redis://, rediss:// or redis-sentinel:// URL and
// returns it with a printable address (never a password).
func newRedisClient(raw string) (redis.UniversalClient, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("queue: parse redis url: invalid URL") // err would echo the password
	}
	switch u.Scheme {
	case "redis", "rediss":
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, "", fmt.Errorf("queue: parse redis url %s: %w", RedactURL(raw), redactErr(err, raw))
		}
		return redis.NewClient(opt), opt.Addr, nil
	case "redis-sentinel":
		opt, err := parseSentinelURL(u)
		if err != nil {
			return nil, "", fmt.Errorf("queue: parse redis url %s: %w", RedactURL(raw), err)
		}
		addr := "sentinel:" + opt.MasterName + "@" + strings.Join(opt.SentinelAddrs, ",")
		return redis.NewFailoverClient(opt), addr, nil
	default:
		return nil, "", fmt.Errorf("queue: redis url %s: unsupported scheme %q (want redis, rediss or redis-sentinel)", RedactURL(raw), u.Scheme)
	}
}

func parseSentinelURL(u *url.URL) (*redis.FailoverOptions, error) {
	opt := &redis.FailoverOptions{}
	for _, h := range strings.Split(u.Host, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "26379")
		}
		opt.SentinelAddrs = append(opt.SentinelAddrs, h)
	}
	if len(opt.SentinelAddrs) == 0 {
		return nil, errors.New("no sentinel address")
	}
	q := u.Query()
	opt.MasterName = q.Get("master")
	if opt.MasterName == "" {
		return nil, errors.New("missing ?master=name")
	}
	opt.SentinelPassword = q.Get("sentinel_password")
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		db, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("database %q is not a number", p)
		}
		opt.DB = db
	}
	return opt, nil
}

// RedactURL returns a Redis URL fit for logs: passwords (in the user part or in a
// sentinel_password query parameter) are replaced by "xxxxx".
func RedactURL(raw string) string {
	if raw == "" {
		return "embedded"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid redis url>"
	}
	if q := u.Query(); q.Has("sentinel_password") {
		q.Set("sentinel_password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactErr makes sure an error from a URL parser does not carry the password.
func redactErr(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// Close releases the connections and stops the embedded Redis, if any. Stop RunWorker and
// Lead (cancel their contexts and wait for them) before calling Close.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		// q.client and q.insp share q.rdb: closing it is enough.
		if q.rdb != nil {
			err = errors.Join(err, q.rdb.Close())
		}
		if q.stopTick != nil {
			close(q.stopTick)
			<-q.tickDone
		}
		if q.mr != nil {
			q.mr.Close()
		}
	})
	return err
}

// Ping checks that Redis answers; for /readyz.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("queue: redis %s: %w", q.addr, err)
	}
	return nil
}

// RedisAddr returns "embedded", or the Redis host:port (or sentinel master and addresses),
// for logs. It never contains a password.
func (q *Queue) RedisAddr() string { return q.addr }

// Namespace returns the key and queue-name prefix in use.
func (q *Queue) Namespace() string { return q.cfg.Namespace }

// newToken returns a random 16-hex-digit string.
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
