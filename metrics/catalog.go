package metrics

// Series is one metric family roster exports.
type Series struct {
	Name string
	// Type is counter, gauge or histogram (a histogram's _bucket, _sum and
	// _count belong to it).
	Type string
	// PerDirectory series carry a directory label and are exported only
	// with metrics.per_directory on.
	PerDirectory bool
}

// Catalog lists every metric family roster exports, its own and the
// queue's. The alert rules, the dashboard and the README's metrics table use
// only these; the tests check a full scrape against it in both directions and
// the shipped rules and dashboard against it, so it cannot drift.
var Catalog = []Series{
	// Directory aggregates (the directory collector's snapshot).
	{Name: "roster_directories", Type: "gauge"},
	{Name: "roster_directories_pending_changes", Type: "gauge"},
	{Name: "roster_directories_oldest_pending_change_timestamp_seconds", Type: "gauge"},
	{Name: "roster_directories_oldest_success_timestamp_seconds", Type: "gauge"},
	{Name: "roster_directories_backing_off", Type: "gauge"},
	{Name: "roster_directory_metrics_refresh_timestamp_seconds", Type: "gauge"},
	// Per directory, opt-in.
	{Name: "roster_directory_state", Type: "gauge", PerDirectory: true},
	{Name: "roster_directory_pending_changes", Type: "gauge", PerDirectory: true},
	{Name: "roster_directory_oldest_pending_change_timestamp_seconds", Type: "gauge", PerDirectory: true},
	{Name: "roster_directory_last_success_timestamp_seconds", Type: "gauge", PerDirectory: true},
	{Name: "roster_directory_poll_backoff_seconds", Type: "gauge", PerDirectory: true},
	{Name: "roster_directory_poll_consecutive_failures", Type: "gauge", PerDirectory: true},
	// Sync.
	{Name: "roster_sync_lag_seconds", Type: "histogram"},
	{Name: "roster_reconcile_last_success_timestamp_seconds", Type: "gauge"},
	{Name: "roster_poll_last_success_timestamp_seconds", Type: "gauge"},
	{Name: "roster_reconciles_total", Type: "counter"},
	{Name: "roster_reconcile_duration_seconds", Type: "histogram"},
	{Name: "roster_changes_applied_total", Type: "counter"},
	{Name: "roster_polls_total", Type: "counter"},
	{Name: "roster_poll_duration_seconds", Type: "histogram"},
	{Name: "roster_poll_requests_total", Type: "counter"},
	{Name: "roster_poll_pages_total", Type: "counter"},
	{Name: "roster_poll_items_total", Type: "counter"},
	{Name: "roster_poll_throttled_total", Type: "counter"},
	{Name: "roster_poll_retries_total", Type: "counter"},
	{Name: "roster_deletion_guard_holds_total", Type: "counter"},
	// Queue (package queue registers these).
	{Name: "roster_queue_depth", Type: "gauge"},
	{Name: "roster_queue_tasks_total", Type: "counter"},
	{Name: "roster_queue_task_duration_seconds", Type: "histogram"},
	{Name: "roster_queue_task_wait_seconds", Type: "histogram"},
	{Name: "roster_queue_triggers_total", Type: "counter"},
	{Name: "roster_queue_trigger_merged_total", Type: "counter"},
	{Name: "roster_queue_tasks_enqueued_total", Type: "counter"},
	{Name: "roster_queue_followups_total", Type: "counter"},
	{Name: "roster_queue_leader", Type: "gauge"},
	// Requests.
	{Name: "roster_scim_requests_total", Type: "counter"},
	{Name: "roster_scim_request_duration_seconds", Type: "histogram"},
	{Name: "roster_api_requests_total", Type: "counter"},
	// Webhooks.
	{Name: "roster_webhook_deliveries_total", Type: "counter"},
	{Name: "roster_webhook_delivery_lag_seconds", Type: "histogram"},
	{Name: "roster_webhook_endpoints", Type: "gauge"},
	{Name: "roster_webhook_oldest_undelivered_event_timestamp_seconds", Type: "gauge"},
	{Name: "roster_webhook_endpoints_disabled_total", Type: "counter"},
}
