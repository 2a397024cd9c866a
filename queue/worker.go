package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// Handlers are the functions RunWorker calls. Each receives the directory ID that needs work;
// it must be idempotent (level-triggered: read the store, converge). A nil handler means this
// worker does not serve that task type.
//
// A handler that returns an error is retried with exponential back-off (Config.MaxRetry,
// RetryBaseDelay, MaxRetryDelay); a trigger that arrives meanwhile merges into the retry.
// After the last retry the key goes back to idle (or to one follow-up run if it was
// triggered during the run). A panic is reported as an error.
type Handlers struct {
	// Reconcile brings one directory's roster in step with its mirror.
	Reconcile func(ctx context.Context, directoryID string) error
	// Poll polls one directory's source.
	Poll func(ctx context.Context, directoryID string) error
	// Deliver runs one webhook endpoint's deliveries. A non-zero time is
	// when to run it again (a retry's due time, or now for a backlog left
	// over): the worker schedules that trigger after the run.
	Deliver func(ctx context.Context, endpointID string) (time.Time, error)
}

// RunWorker processes tasks with h until ctx is done, then shuts down gracefully: it stops
// taking tasks, lets running handlers finish for up to Config.ShutdownTimeout (their context
// is not cancelled meanwhile), then cancels the rest and hands their tasks back to the queue.
// It returns nil after a graceful shutdown.
//
// Reconciles run on one Asynq server (Config.Concurrency slots, queue "realtime"), polls on
// another (Config.PollConcurrency slots, queue "poll"), so polls never hold a slot a reconcile
// needs. Any number of RunWorker calls, in any number of processes
// sharing the Redis, may run at once.
func (q *Queue) RunWorker(ctx context.Context, h Handlers) error {
	type server struct {
		name string
		srv  *asynq.Server
		mux  *asynq.ServeMux
	}
	var servers []server
	if h.Reconcile != nil {
		mux := asynq.NewServeMux()
		mux.HandleFunc(kindReconcile.taskType(), q.handler(kindReconcile, h.Reconcile))
		servers = append(servers, server{queueRealtime, q.newServer(queueRealtime, q.cfg.Concurrency, q.cfg.TaskCheckInterval), mux})
	}
	if h.Poll != nil {
		mux := asynq.NewServeMux()
		mux.HandleFunc(kindPoll.taskType(), q.handler(kindPoll, h.Poll))
		servers = append(servers, server{queuePoll, q.newServer(queuePoll, q.cfg.PollConcurrency, q.cfg.PollTaskCheckInterval), mux})
	}
	if h.Deliver != nil {
		mux := asynq.NewServeMux()
		mux.HandleFunc(kindDeliver.taskType(), q.handler(kindDeliver, q.deliverFunc(h.Deliver)))
		mux.HandleFunc(taskWake, q.wake)
		servers = append(servers, server{queueDeliver, q.newServer(queueDeliver, q.cfg.DeliverConcurrency, q.cfg.TaskCheckInterval), mux})
	}
	if len(servers) == 0 {
		return errors.New("queue: RunWorker: no handler given")
	}
	for i, s := range servers {
		if err := s.srv.Start(s.mux); err != nil {
			for _, started := range servers[:i] {
				started.srv.Shutdown()
			}
			return fmt.Errorf("queue: start %s worker: %w", s.name, err)
		}
	}
	q.log.Info("worker started", "redis", q.addr, "queues", len(servers),
		"concurrency", q.cfg.Concurrency, "poll_concurrency", q.cfg.PollConcurrency, "deliver_concurrency", q.cfg.DeliverConcurrency)
	<-ctx.Done()
	q.log.Info("worker stopping", "shutdown_timeout", q.cfg.ShutdownTimeout)
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.srv.Shutdown()
		}()
	}
	wg.Wait()
	q.log.Info("worker stopped")
	return nil
}

func (q *Queue) newServer(logical string, concurrency int, checkEvery time.Duration) *asynq.Server {
	return asynq.NewServerFromRedisClient(q.rdb, asynq.Config{
		Concurrency:              concurrency,
		Queues:                   map[string]int{q.asynqQueue(logical): 1},
		TaskCheckInterval:        checkEvery,
		DelayedTaskCheckInterval: q.cfg.DelayedTaskCheckInterval,
		RetryDelayFunc:           q.retryDelay,
		ShutdownTimeout:          q.cfg.ShutdownTimeout,
		Logger:                   asynqLogger{q.log.With("queue", logical)},
		LogLevel:                 asynq.InfoLevel, // asynq's debug level logs every empty poll
		// No group aggregation: merging is done by the state machine.
	})
}

// retryDelay is exponential back-off from RetryBaseDelay, capped at MaxRetryDelay, ±10%.
func (q *Queue) retryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := q.cfg.RetryBaseDelay
	for i := 0; i < n && d < q.cfg.MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxRetryDelay)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// deliverFunc adapts a Deliver handler: the run's "again at" becomes a
// trigger. One due now (a backlog left at the run's bound) marks the
// running key dirty, so its follow-up runs right after this one.
func (q *Queue) deliverFunc(fn func(context.Context, string) (time.Time, error)) func(context.Context, string) error {
	return func(ctx context.Context, id string) error {
		at, err := fn(ctx, id)
		if !at.IsZero() {
			bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if terr := q.TriggerDeliverAt(bg, id, at); terr != nil {
				q.log.Warn("queue: cannot schedule the next delivery run; the sweep will", "id", id, "err", terr)
			}
		}
		return err
	}
}

// wake handles a delayed delivery trigger.
func (q *Queue) wake(ctx context.Context, t *asynq.Task) error {
	var p taskPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return fmt.Errorf("queue: deliver wake: bad payload: %v: %w", err, asynq.SkipRetry)
	}
	if early := time.Until(time.Unix(0, p.EnqueuedAt)); early > 0 {
		t := time.NewTimer(min(early, 2*time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return q.TriggerDeliver(ctx, p.ID)
}

// handler wraps fn with the state machine: start → (heartbeat while fn runs) → finish/fail.
func (q *Queue) handler(k kind, fn func(context.Context, string) error) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p taskPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
			q.m.tasks.WithLabelValues(k.name, "invalid").Inc()
			return fmt.Errorf("queue: %s: bad payload: %v: %w", k.name, err, asynq.SkipRetry)
		}
		token, _ := asynq.GetTaskID(ctx)
		key := q.stateKey(k, p.ID)
		runID := newToken()
		log := q.log.With("job", k.name, k.idKey(), p.ID, "task_id", token)

		res, err := scriptStart.Run(ctx, q.rdb, []string{key}, token, runID, ms(q.cfg.RunTTL)).Text()
		if err != nil {
			return fmt.Errorf("queue: %s %s: start: %w", k.name, p.ID, err) // Asynq retries
		}
		if res == "busy" {
			// Another task runs this key; it was marked dirty, so that run's follow-up covers us.
			q.m.tasks.WithLabelValues(k.name, "merged").Inc()
			log.Debug("task merged into the running one")
			return nil
		}
		if p.EnqueuedAt > 0 {
			q.m.wait.WithLabelValues(k.name).Observe(time.Since(time.Unix(0, p.EnqueuedAt)).Seconds())
		}

		hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
		hbDone := make(chan struct{})
		go func() {
			defer close(hbDone)
			q.heartbeat(hbCtx, log, key, token, runID)
		}()
		rep := &jobReport{}
		started := time.Now()
		herr := safeCall(context.WithValue(ctx, reportKey{}, rep), fn, p.ID)
		elapsed := time.Since(started)
		stopHB()
		<-hbDone
		q.m.duration.WithLabelValues(k.name).Observe(elapsed.Seconds())

		// Record the outcome even if ctx is cancelled (shutdown, lease lost).
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if herr != nil && retried < maxRetry && !errors.Is(herr, asynq.SkipRetry) {
			// Asynq retries this same task: keep the key queued for it.
			ttl := q.cfg.MaxRetryDelay + q.cfg.MaxRetryDelay/5 + q.cfg.QueuedTTL
			if err := scriptFail.Run(bg, q.rdb, []string{key}, runID, ms(ttl), nowMS()).Err(); err != nil {
				log.Warn("queue: cannot record failed run", "err", err)
			}
			q.m.tasks.WithLabelValues(k.name, "retry").Inc()
			jobLine(bg, log, rep, elapsed, herr, true, retried, maxRetry)
			return herr
		}

		// Success, or the last attempt failed: idle, or the follow-up if triggered meanwhile.
		next := q.newTaskID(k, p.ID)
		out, err := scriptFinish.Run(bg, q.rdb, []string{key}, runID, next, ms(q.cfg.QueuedTTL), nowMS()).Text()
		switch {
		case err != nil:
			log.Warn("queue: cannot record finished run; state expires by itself", "err", err, "ttl", q.cfg.RunTTL)
		case out == "enqueue":
			if err := q.enqueue(bg, k, p.ID, next); err != nil {
				log.Error("queue: cannot enqueue follow-up run", "err", err)
			} else {
				q.m.followups.WithLabelValues(k.name).Inc()
			}
		case out == "lost":
			log.Warn("queue: run lost its state key while running (Redis state lost or TTL too short)")
		}
		jobLine(bg, log, rep, elapsed, herr, false, retried, maxRetry)
		if herr != nil {
			q.m.tasks.WithLabelValues(k.name, "failed").Inc()
			return herr // Asynq archives it, for inspection
		}
		q.m.tasks.WithLabelValues(k.name, "success").Inc()
		return nil
	}
}

// heartbeat refreshes the running state's TTL every RunTTL/3 until ctx is done.
func (q *Queue) heartbeat(ctx context.Context, log *slog.Logger, key, token, runID string) {
	t := time.NewTicker(q.cfg.RunTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := scriptHeartbeat.Run(ctx, q.rdb, []string{key}, token, runID, ms(q.cfg.RunTTL)).Int()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("queue: heartbeat failed", "err", err)
			}
		case n == 2:
			log.Warn("queue: running state was lost from Redis; re-asserted")
		case n == 0:
			log.Warn("queue: another run took over this key; stopping heartbeat")
			return
		}
	}
}

// safeCall runs fn, turning a panic into an error.
func safeCall(ctx context.Context, fn func(context.Context, string) error, id string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("queue: handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(ctx, id)
}

// asynqLogger adapts slog to Asynq's logger. Asynq's Info messages (start/stop chatter) go to
// Debug.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "source", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Debug(fmt.Sprint(args...), "source", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "source", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "source", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "source", "asynq", "fatal", true)
}
