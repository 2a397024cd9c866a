// Package metrics defines roster's own Prometheus metrics. Names start with
// roster_, use base units, and carry only bounded labels (directory type,
// never directory or user ids, except the per-directory gauges whose
// cardinality is the number of directories).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds roster's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	// SyncLag is the time from a change being observed (SCIM request
	// received, poll read) to the roster applying it.
	SyncLag *prometheus.HistogramVec
	// ReconcileDuration is how long a reconcile run took, by mode.
	ReconcileDuration *prometheus.HistogramVec
	// Reconciles counts reconcile runs by mode and result.
	Reconciles *prometheus.CounterVec
	// ChangesApplied counts roster changes applied, by event type.
	ChangesApplied *prometheus.CounterVec
	// LastReconcile is the time of each directory's last successful
	// reconcile.
	LastReconcile *prometheus.GaugeVec
	// Polls counts polls by directory type and result.
	Polls *prometheus.CounterVec
	// PollDuration is how long polls take.
	PollDuration *prometheus.HistogramVec
	// DeletionGuardTrips counts polls, and runs of SCIM removals, held back
	// by the deletion guard.
	DeletionGuardTrips *prometheus.CounterVec
	// PollRequests, PollPages, PollItems, PollThrottled and PollRetries
	// count what polls cost the sources that report it (connectors.Meter).
	PollRequests, PollPages, PollItems, PollThrottled, PollRetries *prometheus.CounterVec
	// SCIMRequests counts SCIM requests by method, resource and status code.
	SCIMRequests *prometheus.CounterVec
	// SCIMDuration is SCIM request latency.
	SCIMDuration *prometheus.HistogramVec
	// APIRequests counts admin API requests by status code.
	APIRequests *prometheus.CounterVec
	// Webhook holds the delivery counters and the lag histogram.
	Webhook Webhook
}

// New builds the metrics and a registry holding them, Go and process
// collectors included.
func New() *Metrics {
	lagBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		SyncLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roster_sync_lag_seconds", Help: "Time from a directory change being observed to the roster applying it.", Buckets: lagBuckets,
		}, []string{"directory_type"}),
		ReconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roster_reconcile_duration_seconds", Help: "Duration of reconcile runs.", Buckets: lagBuckets,
		}, []string{"mode"}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_reconciles_total", Help: "Reconcile runs by mode (incremental, full) and result (ok, error).",
		}, []string{"mode", "result"}),
		ChangesApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_changes_applied_total", Help: "Roster changes applied, by event type.",
		}, []string{"type"}),
		LastReconcile: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_directory_last_reconcile_timestamp_seconds", Help: "Unix time of the directory's last successful reconcile.",
		}, []string{"directory", "directory_type"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_polls_total", Help: "Directory polls by type, kind (full, incremental) and result (ok, error, held).",
		}, []string{"directory_type", "kind", "result"}),
		PollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roster_poll_duration_seconds", Help: "Duration of directory polls.", Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"directory_type", "kind"}),
		DeletionGuardTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_deletion_guard_trips_total", Help: "Polls, and SCIM removals, held back because they would remove too many members.",
		}, []string{"directory_type"}),
		PollRequests: pollCounter("roster_poll_requests_total", "Requests polls sent to their sources (HTTP requests or LDAP operations, retries included)."),
		PollPages:    pollCounter("roster_poll_pages_total", "Pages polls read from their sources."),
		PollItems:    pollCounter("roster_poll_items_total", "Users, groups and members polls read from their sources."),
		PollThrottled: pollCounter("roster_poll_throttled_total",
			"Source answers that asked a poll to slow down (429, 403 rate limits, Retry-After)."),
		PollRetries: pollCounter("roster_poll_retries_total", "Requests polls sent again after a transient failure."),
		SCIMRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_scim_requests_total", Help: "SCIM requests by method, resource and status code.",
		}, []string{"method", "resource", "code"}),
		SCIMDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roster_scim_request_duration_seconds", Help: "SCIM request latency.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "resource"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_api_requests_total", Help: "Admin API requests by status code.",
		}, []string{"code"}),
		Webhook: newWebhook(),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.SyncLag, m.ReconcileDuration, m.Reconciles, m.ChangesApplied, m.LastReconcile,
		m.Polls, m.PollDuration, m.DeletionGuardTrips,
		m.PollRequests, m.PollPages, m.PollItems, m.PollThrottled, m.PollRetries,
		m.SCIMRequests, m.SCIMDuration, m.APIRequests,
		m.Webhook.Deliveries, m.Webhook.Lag, m.Webhook.Disabled,
	)
	return m
}

func pollCounter(name, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"directory_type"})
}
