// Package metrics defines roster's own Prometheus metrics. Names start with
// roster_, use base units, and carry only bounded labels (directory type,
// never directory or user ids, except the per-directory gauges whose
// cardinality is the number of directories and which are off unless
// metrics.per_directory is set).
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
	// ReconcileLastSuccess is the time of the last reconcile this process
	// committed, by directory type.
	ReconcileLastSuccess *prometheus.GaugeVec
	// PollLastSuccess is the time of the last poll this process ran
	// successfully, by directory type.
	PollLastSuccess *prometheus.GaugeVec
	// Polls counts polls by directory type and result.
	Polls *prometheus.CounterVec
	// PollDuration is how long polls take.
	PollDuration *prometheus.HistogramVec
	// DeletionGuardHolds counts polls (guard "poll"), and runs of SCIM
	// removals (guard "scim"), held back by a deletion guard.
	DeletionGuardHolds *prometheus.CounterVec
	// PollRequests, PollPages, PollItems, PollThrottled and PollRetries
	// count what polls cost the sources that report it (connectors.Meter).
	PollRequests, PollPages, PollItems, PollThrottled, PollRetries *prometheus.CounterVec
	// SCIMRequests counts SCIM requests by method, resource and status
	// class (StatusClass).
	SCIMRequests *prometheus.CounterVec
	// SCIMDuration is SCIM request latency.
	SCIMDuration *prometheus.HistogramVec
	// APIRequests counts admin API requests by status class.
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
		ReconcileLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_reconcile_last_success_timestamp_seconds", Help: "Unix time of the last reconcile of a directory of this type that this process committed.",
		}, []string{"directory_type"}),
		PollLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roster_poll_last_success_timestamp_seconds", Help: "Unix time of the last successful poll of a directory of this type that this process ran.",
		}, []string{"directory_type"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_polls_total", Help: "Directory polls by type, kind (full, incremental) and result (ok, error, held).",
		}, []string{"directory_type", "kind", "result"}),
		PollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roster_poll_duration_seconds", Help: "Duration of directory polls.", Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"directory_type", "kind"}),
		DeletionGuardHolds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_deletion_guard_holds_total", Help: "Polls (guard poll) and runs of SCIM removals (guard scim) held back because they would remove too many members.",
		}, []string{"directory_type", "guard"}),
		PollRequests: pollCounter("roster_poll_requests_total", "Requests polls sent to their sources (HTTP requests or LDAP operations, retries included)."),
		PollPages:    pollCounter("roster_poll_pages_total", "Pages polls read from their sources."),
		PollItems:    pollCounter("roster_poll_items_total", "Users, groups and members polls read from their sources."),
		PollThrottled: pollCounter("roster_poll_throttled_total",
			"Source answers that asked a poll to slow down (429, 403 rate limits, Retry-After)."),
		PollRetries: pollCounter("roster_poll_retries_total", "Requests polls sent again after a transient failure."),
		SCIMRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_scim_requests_total", Help: "SCIM requests by method, resource and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"method", "resource", "status_class"}),
		SCIMDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "roster_scim_request_duration_seconds", Help: "SCIM request latency.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "resource"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_api_requests_total", Help: "Admin API requests by status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"status_class"}),
		Webhook: newWebhook(),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.SyncLag, m.ReconcileDuration, m.Reconciles, m.ChangesApplied, m.ReconcileLastSuccess,
		m.Polls, m.PollDuration, m.PollLastSuccess, m.DeletionGuardHolds,
		m.PollRequests, m.PollPages, m.PollItems, m.PollThrottled, m.PollRetries,
		m.SCIMRequests, m.SCIMDuration, m.APIRequests,
		m.Webhook.Deliveries, m.Webhook.Lag, m.Webhook.Disabled,
	)
	return m
}

func pollCounter(name, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"directory_type"})
}

// Deletion guards, the guard label of DeletionGuardHolds.
const (
	GuardPoll = "poll"
	GuardSCIM = "scim"
)

// StatusClass is the label of an HTTP status: "2xx", "3xx", "4xx" or
// "5xx" (1xx and nonsense codes count as 5xx: a server should not send
// them).
func StatusClass(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	}
	return "5xx"
}
