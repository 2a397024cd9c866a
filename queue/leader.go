package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// renewLease: KEYS[1] lease; ARGV token, ttlms. Extends the lease only if we still hold it.
var scriptRenewLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseLease: KEYS[1] lease; ARGV token. Deletes the lease only if we hold it.
var scriptReleaseLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Lead campaigns for leadership of name (for example "scheduler") among all processes that
// share the Redis, and runs fn while this process is the leader. Leadership is a Redis lease
// (SET NX PX Config.LeaderLeaseTTL), renewed every LeaderLeaseTTL/3 by a compare-and-extend
// script. When the lease is lost (not renewed in time, or taken over) fn's context is
// cancelled; Lead waits for fn to return, then campaigns again. fn should return promptly
// when its context is done: the lease may already belong to another process.
//
// Lead blocks until ctx is done, then cancels fn, waits for it, releases the lease (so a
// standby takes over at once) and returns nil. An error is returned only for a bad name.
func (q *Queue) Lead(ctx context.Context, name string, fn func(ctx context.Context)) error {
	if name == "" {
		return errors.New("queue: Lead: empty name")
	}
	key := q.cfg.Namespace + ":leader:" + name
	ttl := q.cfg.LeaderLeaseTTL
	every := ttl / 3
	log := q.log.With("leader", name)
	gauge := q.m.leader.WithLabelValues(name)
	var lastErr string
	for {
		token := newToken()
		acquired := time.Now()
		ok, err := q.rdb.SetNX(ctx, key, token, ttl).Result()
		if err != nil && ctx.Err() == nil && err.Error() != lastErr {
			log.Warn("queue: leader election: redis error", "err", err)
			lastErr = err.Error()
		}
		if err == nil {
			lastErr = ""
		}
		if ok {
			log.Info("became leader")
			gauge.Set(1)
			q.lead(ctx, log, key, token, acquired, fn)
			gauge.Set(0)
			// Release the lease if still ours (compare-and-delete), so a standby takes over
			// at once.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := scriptReleaseLease.Run(rctx, q.rdb, []string{key}, token).Err(); err != nil {
				log.Warn("queue: cannot release leader lease; it expires by itself", "err", err, "ttl", ttl)
			}
			cancel()
			if ctx.Err() != nil {
				log.Info("stepped down")
				return nil
			}
			log.Warn("leadership ended; campaigning again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// lead runs fn while the lease is renewed; it returns after fn has returned.
func (q *Queue) lead(ctx context.Context, log *slog.Logger, key, token string, acquired time.Time, fn func(context.Context)) {
	ttl := q.cfg.LeaderLeaseTTL
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		fn(fctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	// We hold the lease until validUntil (measured from before the SET, so conservative).
	validUntil := acquired.Add(ttl)
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		// Give up the lease before it can have expired, if renewals keep failing.
		deadline := time.NewTimer(time.Until(validUntil) - ttl/10)
		select {
		case <-fctx.Done():
			deadline.Stop()
			return // ctx done, or fn returned on its own
		case <-deadline.C:
			log.Warn("queue: leader lease could not be renewed in time")
			return
		case <-t.C:
			deadline.Stop()
		}
		sent := time.Now()
		rctx, rcancel := context.WithTimeout(fctx, ttl/3)
		n, err := scriptRenewLease.Run(rctx, q.rdb, []string{key}, token, ms(ttl)).Int()
		rcancel()
		switch {
		case err != nil:
			if fctx.Err() == nil {
				log.Warn("queue: leader lease renewal failed", "err", fmt.Sprint(err))
			}
		case n == 0:
			return // someone else holds it (or it expired)
		default:
			validUntil = sent.Add(ttl)
		}
	}
}
