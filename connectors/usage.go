package connectors

import "log/slog"

// Usage is what a poll cost a source: the poller records it in metrics and
// in the directory's state.
type Usage struct {
	Requests  int64 // HTTP requests or LDAP operations sent, retries included
	Pages     int64 // pages read
	Items     int64 // users, groups and members read
	Throttled int64 // answers that asked to slow down (429, Retry-After)
	Retries   int64 // requests sent again after a transient failure
}

// LogValue logs the counts with the keys every log line uses.
func (u Usage) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("requests", u.Requests), slog.Int64("pages", u.Pages),
		slog.Int64("items", u.Items), slog.Int64("throttled", u.Throttled), slog.Int64("retries", u.Retries))
}

// Meter is implemented by sources that count what a poll costs. The poller
// reads it once the poll is over, so counts start at zero for each opened
// source.
type Meter interface {
	Usage() Usage
}
