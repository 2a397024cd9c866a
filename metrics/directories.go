package metrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roster-dev/roster/store"
)

// DirectoryStore is what the per-directory gauges read at scrape time.
type DirectoryStore interface {
	ListDirectories(ctx context.Context, teamID string) ([]*store.Directory, error)
	PendingCounts(ctx context.Context) (map[string]store.Pending, error)
}

// DirectoryCollector reports per-directory gauges read from the store at
// scrape time, so every replica reports the same truth whichever process
// did the work.
type DirectoryCollector struct {
	store DirectoryStore
	log   *slog.Logger
}

// NewDirectoryCollector returns the collector of the per-directory gauges;
// register it with the Registry.
func NewDirectoryCollector(s DirectoryStore, log *slog.Logger) *DirectoryCollector {
	return &DirectoryCollector{store: s, log: log}
}

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 3 * time.Second

var (
	descPending = prometheus.NewDesc("roster_directory_pending_changes", "Changes waiting for the reconciler.", []string{"directory", "directory_type"}, nil)
	descOldest  = prometheus.NewDesc("roster_directory_oldest_pending_change_timestamp_seconds", "Unix time the oldest change not yet applied was observed; 0 when none.", []string{"directory", "directory_type"}, nil)
	descState   = prometheus.NewDesc("roster_directory_state", "1 for the directory's current state (syncing, ok, error, needs_review).", []string{"directory", "directory_type", "state"}, nil)
	descLastOK  = prometheus.NewDesc("roster_directory_last_success_timestamp_seconds", "Unix time of the directory's last successful sync (poll or SCIM write applied).", []string{"directory", "directory_type"}, nil)
	descBackoff = prometheus.NewDesc("roster_directory_poll_backoff_seconds", "Seconds until a directory whose polls keep failing may be polled on schedule again; 0 when it is not backing off.", []string{"directory", "directory_type"}, nil)
	descFailing = prometheus.NewDesc("roster_directory_poll_consecutive_failures", "Failed polls in a row; one success resets it.", []string{"directory", "directory_type"}, nil)
	descDirs    = prometheus.NewDesc("roster_directories", "Directories by type.", []string{"directory_type"}, nil)
)

// Describe sends the gauges' descriptions.
func (c *DirectoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descOldest, descState, descLastOK, descBackoff, descFailing, descDirs} {
		ch <- d
	}
}

// Collect reads the directories and their pending changes and sends the
// gauges. A failed read sends nothing: no series beats a wrong one.
func (c *DirectoryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	dirs, err := c.store.ListDirectories(ctx, "")
	if err != nil {
		c.log.Warn("metrics: list directories", "err", err)
		return
	}
	pending, err := c.store.PendingCounts(ctx)
	if err != nil {
		c.log.Warn("metrics: pending changes", "err", err)
		return
	}
	byType := map[string]int{}
	now := time.Now()
	for _, d := range dirs {
		byType[d.Type]++
		p := pending[d.ID]
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(p.Count), d.ID, d.Type)
		oldest := 0.0
		if p.Count > 0 {
			oldest = float64(p.Oldest.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest, d.ID, d.Type)
		for _, s := range []string{store.StateSyncing, store.StateOK, store.StateError, store.StateNeedsReview} {
			v := 0.0
			if d.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, d.ID, d.Type, s)
		}
		if d.LastSyncAt != nil {
			ch <- prometheus.MustNewConstMetric(descLastOK, prometheus.GaugeValue, float64(d.LastSyncAt.UnixNano())/1e9, d.ID, d.Type)
		}
		if len(d.LastPoll) > 0 { // polled directories only
			failures, wait := pollBackoff(d.LastPoll, now)
			ch <- prometheus.MustNewConstMetric(descBackoff, prometheus.GaugeValue, wait.Seconds(), d.ID, d.Type)
			ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, float64(failures), d.ID, d.Type)
		}
	}
	for t, n := range byType {
		ch <- prometheus.MustNewConstMetric(descDirs, prometheus.GaugeValue, float64(n), t)
	}
}

// pollBackoff reads the backoff the poller keeps in a directory's last_poll
// JSON (sync/poll.LastPoll; read here by field name, since poll imports
// this package).
func pollBackoff(lastPoll json.RawMessage, now time.Time) (failures int, wait time.Duration) {
	var lp struct {
		ConsecutiveFailures int        `json:"consecutive_failures"`
		NextPollAt          *time.Time `json:"next_poll_at"`
	}
	if json.Unmarshal(lastPoll, &lp) != nil {
		return 0, 0
	}
	if lp.ConsecutiveFailures > 0 && lp.NextPollAt != nil && lp.NextPollAt.After(now) {
		wait = lp.NextPollAt.Sub(now)
	}
	return lp.ConsecutiveFailures, wait
}
