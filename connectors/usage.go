package connectors

// Usage is what a poll cost a source: the poller records it in metrics and
// in the directory's state.
type Usage struct {
	Requests  int64 // HTTP requests or LDAP operations sent, retries included
	Pages     int64 // pages read
	Items     int64 // users, groups and members read
	Throttled int64 // answers that asked to slow down (429, Retry-After)
	Retries   int64 // requests sent again after a transient failure
}

// Meter is implemented by sources that count what a poll costs. The poller
// reads it once the poll is over, so counts start at zero for each opened
// source.
type Meter interface {
	Usage() Usage
}
