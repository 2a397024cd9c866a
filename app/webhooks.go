package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/webhooks"
)

// deliverer runs webhook deliveries on the queue's workers and wakes them
// when events are committed.
type deliverer struct {
	store   *store.Store
	runner  *webhooks.Runner
	metrics *metrics.Metrics
	log     *slog.Logger
	trigger func(ctx context.Context, endpointID string) error

	// pending holds teams whose feed grew; one goroutine drains it, so the
	// committing goroutine never waits for Redis.
	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{}
}

func newDeliverer(a *App) *deliverer {
	client := webhooks.NewClient(webhooks.Options{AllowPrivateNetworks: a.Cfg.Webhooks.AllowPrivateNetworks})
	policy := webhooks.DefaultPolicy
	if d := a.Cfg.Webhooks.RetryInitial.Duration; d > 0 {
		policy.Initial = d
	}
	return &deliverer{
		store:   a.Store,
		metrics: a.Metrics,
		log:     a.Log.With("component", "webhooks"),
		trigger: a.Queue.TriggerDeliver,
		// MaxEvents bounds one run, so that a long backlog gives the
		// worker slot back now and then; the follow-up runs at once.
		runner:  &webhooks.Runner{Client: client, Policy: policy, MaxEvents: 200, Logger: a.Log.With("component", "webhooks")},
		pending: map[string]bool{},
		wake:    make(chan struct{}, 1),
	}
}

// eventsCommitted is the store's after-commit hook: the team's endpoints
// have work. It must not block.
func (d *deliverer) eventsCommitted(teamID string) {
	d.mu.Lock()
	d.pending[teamID] = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run triggers the endpoints of teams whose feed grew, until ctx ends.
// A trigger lost here (Redis down) is caught by the scheduler's sweep.
func (d *deliverer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		d.mu.Lock()
		teams := d.pending
		d.pending = map[string]bool{}
		d.mu.Unlock()
		for team := range teams {
			ids, err := d.store.ActiveWebhookIDs(ctx, team)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("list webhooks to trigger; the sweep will", "team", team, "err", err)
				}
				continue
			}
			for _, id := range ids {
				if err := d.trigger(ctx, id); err != nil && ctx.Err() == nil {
					d.log.Warn("trigger webhook delivery", "endpoint", id, "err", err)
				}
			}
		}
	}
}

// deliver is the queue handler: one run of one endpoint. The time it
// returns is when to run again (a retry, or now for a backlog left over).
func (d *deliverer) deliver(ctx context.Context, endpointID string) (time.Time, error) {
	w, err := d.store.GetWebhook(ctx, "", endpointID)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil // deleted meanwhile
	}
	if err != nil {
		return time.Time{}, err
	}
	src := &timedSource{src: d.store, at: map[string]time.Time{}}
	sink := &meteredSink{sink: d.store, src: src, m: d.metrics}
	res, err := d.runner.Run(ctx, &w.Endpoint, src, sink)
	reportDeliver(ctx, &w.Endpoint, res)
	if errors.Is(err, webhooks.ErrStateChanged) {
		// An admin replayed, enabled or deleted it during the run: run
		// again from what is stored now.
		return time.Now(), nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if res.More {
		return time.Now(), nil
	}
	return res.RetryAt, nil
}

// timedSource remembers each event's commit time for the lag histogram.
type timedSource struct {
	src webhooks.EventSource
	at  map[string]time.Time
}

func (s *timedSource) EventsAfter(ctx context.Context, teamID, cursor string, limit int) ([]webhooks.Event, error) {
	evs, err := s.src.EventsAfter(ctx, teamID, cursor, limit)
	for _, ev := range evs {
		var head struct {
			OccurredAt time.Time `json:"occurred_at"`
		}
		if json.Unmarshal(ev.Body, &head) == nil {
			s.at[ev.ID] = head.OccurredAt
		}
	}
	return evs, err
}

// meteredSink counts what the store saved.
type meteredSink struct {
	sink webhooks.StateSink
	src  *timedSource
	m    *metrics.Metrics
}

func (s *meteredSink) SaveState(ctx context.Context, id string, from, to webhooks.State, a *webhooks.Attempt) error {
	if err := s.sink.SaveState(ctx, id, from, to, a); err != nil {
		return err
	}
	if a != nil {
		s.m.Webhook.Deliveries.WithLabelValues(resultLabel(a.Outcome)).Inc()
		if at, ok := s.src.at[a.EventID]; ok && a.Outcome == webhooks.Delivered && !at.IsZero() {
			s.m.Webhook.Lag.Observe(a.End().Sub(at).Seconds())
		}
	}
	if to.Status == webhooks.Disabled && from.Status != webhooks.Disabled {
		s.m.Webhook.Disabled.Inc()
	}
	return nil
}

func resultLabel(o webhooks.Outcome) string {
	switch o {
	case webhooks.Delivered:
		return "delivered"
	case webhooks.Gone:
		return "gone"
	default:
		return "retry"
	}
}

// sweepWebhooks triggers endpoints that are behind their feed and due:
// the level-triggered safety net for lost triggers and delayed retries
// lost with Redis.
func (a *App) sweepWebhooks(ctx context.Context, log *slog.Logger) {
	ids, err := a.Store.WebhooksDue(ctx, time.Now())
	if err != nil {
		log.Warn("webhook sweep", "err", err)
		return
	}
	for _, id := range ids {
		if err := a.Queue.TriggerDeliver(ctx, id); err != nil {
			log.Warn("webhook sweep trigger", "endpoint", id, "err", err)
		}
	}
}

// pruneWebhookLog drops delivery attempts older than the retention.
func (a *App) pruneWebhookLog(ctx context.Context, log *slog.Logger) {
	n, err := a.Store.PruneWebhookDeliveries(ctx, time.Now().Add(-a.Cfg.Webhooks.DeliveryLogRetention.Duration))
	if err != nil {
		log.Warn("prune webhook delivery log", "err", err)
	} else if n > 0 {
		log.Info("pruned webhook delivery log", "rows", n)
	}
}

// streamPoll is how often a waiting event stream reads the store for
// events that other processes committed (replicas on PostgreSQL, or an
// API-only process beside separate workers); this process's own commits
// wake its streams at once through the Hub. A process that holds a SQLite
// database with every role is told of every commit, so its streams never
// poll.
func streamPoll(cfg config.Config, engine string) time.Duration {
	roles := cfg.Roles()
	if engine == store.SQLite && roles[config.RoleAPI] && roles[config.RoleWorker] && roles[config.RoleScheduler] {
		return 0
	}
	return time.Second
}
