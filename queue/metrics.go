package queue

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	triggers  *prometheus.CounterVec
	merged    *prometheus.CounterVec
	enqueued  *prometheus.CounterVec
	followups *prometheus.CounterVec
	tasks     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	wait      *prometheus.HistogramVec
	leader    *prometheus.GaugeVec
	depth     *depthCollector
}

func newMetrics(q *Queue) *metrics {
	return &metrics{
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_queue_triggers_total",
			Help: "Triggers received (reconcile, poll), merged or not.",
		}, []string{"type"}),
		merged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_queue_trigger_merged_total",
			Help: "Triggers that merged into a queued task or into a running one's follow-up instead of enqueueing a task.",
		}, []string{"type"}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_queue_tasks_enqueued_total",
			Help: "Tasks put on the queue (first runs and follow-ups).",
		}, []string{"type"}),
		followups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_queue_followups_total",
			Help: "Follow-up runs enqueued because the key was triggered while it ran.",
		}, []string{"type"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_queue_tasks_total",
			Help: "Tasks processed by result: success, retry (failed, will retry), failed (retries exhausted), merged (another worker was running the key), invalid.",
		}, []string{"type", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_queue_task_duration_seconds",
			Help:    "Handler run time.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1ms .. ~4.4min
		}, []string{"type"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roster_queue_task_wait_seconds",
			Help:    "Time from enqueueing a task to its handler starting.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"type"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_queue_leader",
			Help: "1 while this process holds the named leader lease.",
		}, []string{"name"}),
		depth: &depthCollector{q: q, desc: prometheus.NewDesc(
			"roster_queue_depth",
			"Tasks in each queue by state (pending, active, scheduled, retry, archived), read from Redis at scrape time.",
			[]string{"queue", "state"}, nil)},
	}
}

// Collectors returns the queue's Prometheus collectors, for the caller to register:
// roster_queue_triggers_total{type}, roster_queue_trigger_merged_total{type},
// roster_queue_tasks_enqueued_total{type}, roster_queue_followups_total{type},
// roster_queue_tasks_total{type,result}, roster_queue_task_duration_seconds{type},
// roster_queue_task_wait_seconds{type}, roster_queue_leader{name} and
// roster_queue_depth{queue,state} (read from Redis on each scrape).
func (q *Queue) Collectors() []prometheus.Collector {
	m := q.m
	return []prometheus.Collector{m.triggers, m.merged, m.enqueued, m.followups, m.tasks,
		m.duration, m.wait, m.leader, m.depth}
}

// QueueStats is the depth of one queue.
type QueueStats struct {
	Queue     string // logical name: "realtime" or "poll"
	Pending   int    // waiting to run
	Active    int    // running
	Scheduled int    // scheduled for later (unused by roster today)
	Retry     int    // failed, waiting for a retry
	Archived  int    // failed for good, kept for inspection
}

// Stats is a snapshot of the queues.
type Stats struct {
	Queues []QueueStats // realtime, then poll
}

// Stats reads the depth of every queue from Redis. A queue that was never used reads as
// empty.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	// The Inspector does not take a context; check ctx between calls.
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	known, err := q.insp.Queues()
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	var st Stats
	for _, logical := range []string{queueRealtime, queuePoll, queueDeliver} {
		if err := ctx.Err(); err != nil {
			return Stats{}, err
		}
		qs := QueueStats{Queue: logical}
		if slices.Contains(known, q.asynqQueue(logical)) {
			info, err := q.insp.GetQueueInfo(q.asynqQueue(logical))
			if err != nil {
				return Stats{}, fmt.Errorf("queue: stats %s: %w", logical, err)
			}
			qs.Pending, qs.Active, qs.Scheduled, qs.Retry, qs.Archived =
				info.Pending, info.Active, info.Scheduled, info.Retry, info.Archived
		}
		st.Queues = append(st.Queues, qs)
	}
	return st, nil
}

// depthCollector reads queue depth at scrape time.
type depthCollector struct {
	q    *Queue
	desc *prometheus.Desc
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.q.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, qs := range st.Queues {
		for _, v := range []struct {
			state string
			n     int
		}{{"pending", qs.Pending}, {"active", qs.Active}, {"scheduled", qs.Scheduled},
			{"retry", qs.Retry}, {"archived", qs.Archived}} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v.n), qs.Queue, v.state)
		}
	}
}
