package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/webhooks"
)

// Webhook delivery metrics. Labels are bounded: a result or a state, never
// an endpoint or team id.
type Webhook struct {
	// Deliveries counts delivery attempts by result: delivered (2xx),
	// retry (any other answer, a timeout, a connection error, a refused
	// address) or gone (410, which disables the endpoint).
	Deliveries *prometheus.CounterVec
	// Lag is the time from an event's commit to its 2xx, per delivery.
	Lag prometheus.Histogram
	// Disabled counts endpoints disabled by delivery (3 days failing, or
	// 410 Gone).
	Disabled prometheus.Counter
}

func newWebhook() Webhook {
	return Webhook{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roster_webhook_deliveries_total", Help: "Webhook delivery attempts by result (delivered, retry, gone).",
		}, []string{"result"}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roster_webhook_delivery_lag_seconds", Help: "Time from an event's commit to its 2xx from a webhook endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400},
		}),
		Disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roster_webhook_endpoints_disabled_total", Help: "Webhook endpoints disabled by delivery (3 days of failures, or 410 Gone).",
		}),
	}
}

// WebhookStore is what the webhook gauges read at scrape time.
type WebhookStore interface {
	WebhookStats(ctx context.Context) (map[webhooks.Status]store.WebhookStateStats, error)
}

// scrapeTimeout bounds the store read of one scrape.
const scrapeTimeout = 3 * time.Second

var (
	descHookEndpoints = prometheus.NewDesc("roster_webhook_endpoints", "Webhook endpoints by state (active, failing, disabled).", []string{"state"}, nil)
	descHookOldest    = prometheus.NewDesc("roster_webhook_oldest_undelivered_event_timestamp_seconds",
		"Commit time (Unix) of the oldest event an endpoint in this state has not delivered yet; 0 when all are caught up.", []string{"state"}, nil)
)

// WebhookCollector reports the webhook gauges, read from the store at
// scrape time so that every replica reports the same.
type WebhookCollector struct {
	store WebhookStore
	log   *slog.Logger
}

// NewWebhookCollector returns the collector of the webhook gauges.
func NewWebhookCollector(s WebhookStore, log *slog.Logger) *WebhookCollector {
	return &WebhookCollector{store: s, log: log}
}

// Describe sends the gauges' descriptions.
func (c *WebhookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHookEndpoints
	ch <- descHookOldest
}

// Collect sends one series per state, zeros included, so alerts on a
// state see it from the start.
func (c *WebhookCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	stats, err := c.store.WebhookStats(ctx)
	if err != nil {
		c.log.Warn("metrics: webhook stats", "err", err)
		return
	}
	for _, s := range []webhooks.Status{webhooks.Active, webhooks.Failing, webhooks.Disabled} {
		st := stats[s]
		ch <- prometheus.MustNewConstMetric(descHookEndpoints, prometheus.GaugeValue, float64(st.Endpoints), string(s))
		oldest := 0.0
		if !st.Oldest.IsZero() {
			oldest = float64(st.Oldest.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descHookOldest, prometheus.GaugeValue, oldest, string(s))
	}
}
