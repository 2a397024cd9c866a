package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Logical Asynq queues. Reconciles go to "realtime"; polls, which can be slow, have their own
// queue and their own worker pool.
const (
	queueRealtime = "realtime"
	queuePoll     = "poll"
	// queueDeliver holds webhook deliveries, one key per endpoint, on a
	// worker pool of their own: a slow receiver holds one delivery slot
	// for at most one attempt's timeout, never a reconcile's.
	queueDeliver = "deliver"
)

// kind is one type of work: a task type, the Asynq queue it goes to, and the key space of
// its state machine.
type kind struct {
	name  string // "reconcile": metric label and state-key segment
	queue string // logical queue name
}

var (
	kindReconcile = kind{name: "reconcile", queue: queueRealtime}
	kindPoll      = kind{name: "poll", queue: queuePoll}
	kindDeliver   = kind{name: "deliver", queue: queueDeliver}
	kinds         = []kind{kindReconcile, kindPoll, kindDeliver}
)

func (k kind) taskType() string { return "roster:" + k.name }

// asynqQueue is the namespaced Asynq queue name of a logical queue.
func (q *Queue) asynqQueue(logical string) string { return q.cfg.Namespace + ":" + logical }

func (q *Queue) stateKey(k kind, id string) string {
	return q.cfg.Namespace + ":state:" + k.name + ":" + id
}

// taskPayload is the body of an Asynq task: which key needs work, and when it was enqueued
// (for the wait-time metric).
type taskPayload struct {
	ID         string `json:"id"`
	EnqueuedAt int64  `json:"at"` // unix nanoseconds
}

// The state of a key is a Redis hash, absent when idle:
//
//	s    q (queued) | r (running) | d (running, and triggered since it started: "dirty")
//	t    the Asynq task ID (token) that owns the key: the queued task, or the running one
//	run  a random ID of the current handler run (only while r or d)
//	at   unix ms when the key became queued
//	chk  unix ms of the last "is the queued task still there" check
//
// Transitions (each one Lua script, so atomic):
//
//	trigger:  idle → q (caller enqueues task t) ; q → q ; r → d ; d → d
//	start:    q/idle/own r,d → r (run) ; r,d of another task → d, and this task ends ("busy")
//	finish:   r → idle ; d → q with a new task (the follow-up)
//	fail:     r,d → q, same task (Asynq retries it)
//	cancel:   q with token t → idle (the enqueue of t failed, or t is gone)
//	heartbeat refreshes the TTL of r/d while the handler runs, and re-asserts the state if
//	          Redis lost it.

// trigger: KEYS[1] state; ARGV token, queuedTTLms, nowms, checkAfterms.
// Returns {action, token}: action is "enqueue" (caller must enqueue token), "merged" (queued
// already), "dirty" (running: a follow-up will run), "check" (queued for long: verify token).
var scriptTrigger = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 's')
if not s then
  redis.call('HSET', KEYS[1], 's', 'q', 't', ARGV[1], 'at', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'enqueue', ARGV[1]}
end
if s == 'r' then
  redis.call('HSET', KEYS[1], 's', 'd')
  return {'dirty', ''}
end
if s == 'd' then
  return {'dirty', ''}
end
local t = redis.call('HGET', KEYS[1], 't') or ''
local last = tonumber(redis.call('HGET', KEYS[1], 'chk') or '0') or 0
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0') or 0
if at > last then last = at end
if tonumber(ARGV[3]) - last > tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'chk', ARGV[3])
  return {'check', t}
end
return {'merged', t}
`)

// start: KEYS[1] state; ARGV token, runID, runTTLms. Returns "run" or "busy".
var scriptStart = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 's')
local t = redis.call('HGET', KEYS[1], 't')
if (s == 'r' or s == 'd') and t ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 's', 'd')
  return 'busy'
end
redis.call('HSET', KEYS[1], 's', 'r', 't', ARGV[1], 'run', ARGV[2])
redis.call('HDEL', KEYS[1], 'chk', 'at')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 'run'
`)

// heartbeat: KEYS[1] state; ARGV token, runID, runTTLms.
// Returns 1 (refreshed), 2 (state was lost or taken by a queued task: re-asserted), 0 (another
// run owns the key now).
var scriptHeartbeat = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 's')
if not s then
  redis.call('HSET', KEYS[1], 's', 'r', 't', ARGV[1], 'run', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 2
end
if redis.call('HGET', KEYS[1], 'run') == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if s == 'q' then
  redis.call('HSET', KEYS[1], 's', 'd', 't', ARGV[1], 'run', ARGV[2])
  redis.call('HDEL', KEYS[1], 'chk', 'at')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 2
end
return 0
`)

// finish: KEYS[1] state; ARGV runID, newToken, queuedTTLms, nowms.
// Returns "idle", "enqueue" (caller must enqueue newToken: the follow-up) or "lost".
var scriptFinish = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then
  return 'lost'
end
if redis.call('HGET', KEYS[1], 's') == 'd' then
  redis.call('HSET', KEYS[1], 's', 'q', 't', ARGV[2], 'at', ARGV[4])
  redis.call('HDEL', KEYS[1], 'run')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 'enqueue'
end
redis.call('DEL', KEYS[1])
return 'idle'
`)

// fail: KEYS[1] state; ARGV runID, ttlms, nowms. The same task is queued again (for retry).
var scriptFail = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then
  return 'lost'
end
redis.call('HSET', KEYS[1], 's', 'q', 'at', ARGV[3])
redis.call('HDEL', KEYS[1], 'run')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'retry'
`)

// cancel: KEYS[1] state; ARGV token. Drops a queued state whose task does not exist.
var scriptCancel = redis.NewScript(`
if redis.call('HGET', KEYS[1], 's') == 'q' and redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

func ms(d time.Duration) int64 { return d.Milliseconds() }

func nowMS() int64 { return time.Now().UnixMilli() }

// TriggerReconcile says "directory needs a reconcile". At most one reconcile per directory is
// queued or running: a trigger merges into a queued one, and a trigger during a run causes
// exactly one follow-up run.
func (q *Queue) TriggerReconcile(ctx context.Context, directoryID string) error {
	return q.trigger(ctx, kindReconcile, directoryID)
}

// EnqueuePoll asks for a poll of a directory, with the same merging as TriggerReconcile: at
// most one poll per directory is queued or running, and a poll requested while one runs
// causes one follow-up poll. Polls run on their own queue and worker pool.
func (q *Queue) EnqueuePoll(ctx context.Context, directoryID string) error {
	return q.trigger(ctx, kindPoll, directoryID)
}

// TriggerDeliver says "webhook endpoint needs a delivery run", with the
// same merging as TriggerReconcile: one run per endpoint is queued or
// running at a time, across every worker, and a trigger during a run
// causes one follow-up.
func (q *Queue) TriggerDeliver(ctx context.Context, endpointID string) error {
	return q.trigger(ctx, kindDeliver, endpointID)
}

// taskWake is a delayed trigger: when it comes due, its handler calls
// TriggerDeliver. It does not hold the endpoint's key while it waits, so
// an earlier trigger (an admin's enable or replay) runs at once instead of
// merging into a retry scheduled an hour away.
const taskWake = "roster:deliver-wake"

// TriggerDeliverAt triggers a delivery run for the endpoint at time at (at
// once when at has passed). Delayed triggers for the same endpoint and
// instant collapse into one. They live in Redis only: the scheduler's
// sweep re-triggers endpoints whose retry is due, so a lost one costs a
// sweep's delay.
func (q *Queue) TriggerDeliverAt(ctx context.Context, endpointID string, at time.Time) error {
	if !at.After(time.Now()) {
		return q.TriggerDeliver(ctx, endpointID)
	}
	// EnqueuedAt carries the due time: Asynq keeps scheduled tasks by
	// whole seconds and may hand one out up to a second early; the wake
	// handler waits out the rest.
	body, _ := json.Marshal(taskPayload{ID: endpointID, EnqueuedAt: at.UnixNano()})
	task := asynq.NewTask(taskWake, body,
		asynq.Queue(q.asynqQueue(queueDeliver)),
		asynq.TaskID("wake:"+endpointID+":"+strconv.FormatInt(at.UnixMilli(), 10)),
		asynq.ProcessAt(at),
		asynq.MaxRetry(q.cfg.MaxRetry),
	)
	_, err := q.client.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("queue: schedule delivery %s: %w", endpointID, err)
	}
	return nil
}

func (q *Queue) trigger(ctx context.Context, k kind, id string) error {
	if id == "" {
		return fmt.Errorf("queue: %s: empty id", k.name)
	}
	q.m.triggers.WithLabelValues(k.name).Inc()
	key := q.stateKey(k, id)

	// Fast path without Lua (a bulk load triggers the same key many times): a key that is
	// queued has not started, so its run will see everything committed before this trigger;
	// a key that is dirty already has its follow-up promised. Only idle and running keys need
	// the atomic script.
	if v, err := q.rdb.HMGet(ctx, key, "s", "at", "chk").Result(); err == nil && len(v) == 3 {
		switch s, _ := v[0].(string); s {
		case "d":
			q.m.merged.WithLabelValues(k.name).Inc()
			return nil
		case "q":
			at, _ := v[1].(string)
			chk, _ := v[2].(string)
			if nowMS()-max(parseInt(at), parseInt(chk)) <= ms(q.cfg.QueuedCheckAfter) {
				q.m.merged.WithLabelValues(k.name).Inc()
				return nil
			}
		}
	}

	for attempt := 0; ; attempt++ {
		token := q.newTaskID(k, id)
		res, err := scriptTrigger.Run(ctx, q.rdb, []string{key},
			token, ms(q.cfg.QueuedTTL), nowMS(), ms(q.cfg.QueuedCheckAfter)).StringSlice()
		if err != nil {
			return fmt.Errorf("queue: trigger %s %s: %w", k.name, id, err)
		}
		if len(res) != 2 {
			return fmt.Errorf("queue: trigger %s %s: unexpected script result %q", k.name, id, res)
		}
		switch res[0] {
		case "enqueue":
			// The key is ours now; finish the enqueue even if the caller gives up.
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := q.enqueue(ectx, k, id, token)
			cancel()
			return err
		case "dirty":
			q.m.merged.WithLabelValues(k.name).Inc()
			return nil
		case "merged":
			q.m.merged.WithLabelValues(k.name).Inc()
			return nil
		case "check":
			gone, err := q.taskGone(ctx, k, res[1])
			if err != nil || !gone || attempt > 0 {
				if err != nil {
					q.log.Warn("queue: cannot check queued task", "job", k.name, k.idKey(), id, "err", err)
				}
				q.m.merged.WithLabelValues(k.name).Inc()
				return nil
			}
			q.log.Warn("queue: queued task was lost; enqueueing again", "job", k.name, k.idKey(), id, "task_id", res[1])
			if err := scriptCancel.Run(ctx, q.rdb, []string{key}, res[1]).Err(); err != nil {
				return fmt.Errorf("queue: trigger %s %s: %w", k.name, id, err)
			}
		default:
			return fmt.Errorf("queue: trigger %s %s: unexpected script result %q", k.name, id, res)
		}
	}
}

// taskGone reports whether the Asynq task with this ID no longer exists in any state.
func (q *Queue) taskGone(ctx context.Context, k kind, taskID string) (bool, error) {
	_, err := q.insp.GetTaskInfo(q.asynqQueue(k.queue), taskID)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return true, nil
	default:
		return false, err
	}
}

// newTaskID returns a fresh Asynq task ID for a key; it doubles as the state token.
func (q *Queue) newTaskID(k kind, id string) string {
	return k.name + ":" + id + ":" + newToken()
}

// enqueue puts the Asynq task for a key that was just marked queued with token. On failure
// it returns the key to idle so that the next trigger tries again.
func (q *Queue) enqueue(ctx context.Context, k kind, id, token string) error {
	body, _ := json.Marshal(taskPayload{ID: id, EnqueuedAt: time.Now().UnixNano()})
	task := asynq.NewTask(k.taskType(), body,
		asynq.Queue(q.asynqQueue(k.queue)),
		asynq.TaskID(token),
		asynq.MaxRetry(q.cfg.MaxRetry),
		asynq.Timeout(q.cfg.TaskTimeout),
	)
	_, err := q.client.EnqueueContext(ctx, task)
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) {
		q.m.enqueued.WithLabelValues(k.name).Inc()
		return nil
	}
	if cerr := scriptCancel.Run(ctx, q.rdb, []string{q.stateKey(k, id)}, token).Err(); cerr != nil {
		q.log.Warn("queue: cannot reset state after failed enqueue; it expires by itself",
			"job", k.name, k.idKey(), id, "err", cerr, "ttl", q.cfg.QueuedTTL)
	}
	return fmt.Errorf("queue: enqueue %s %s: %w", k.name, id, err)
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
