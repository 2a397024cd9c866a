package poll

import (
	"encoding/json"
	"time"

	"github.com/robfig/cron/v3"
)

// MaxBackoff caps how long a failing directory's scheduled polls are
// skipped; a schedule slower than this keeps its own pace.
const MaxBackoff = time.Hour

// backoff is how long after a failed poll's start the schedule waits
// before polling again: the schedule's interval doubled per consecutive
// failure, capped at MaxBackoff (or the interval, when that is longer).
// One failure already skips one scheduled poll, so a source that is down
// is not hit on every tick.
func backoff(failures int, interval time.Duration) time.Duration {
	limit := max(MaxBackoff, interval)
	d := interval
	for i := 0; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// ScheduleInterval is the time between two firings of a schedule spec
// after now, or 0 when the spec does not parse. Specs are read as
// connectors.PollSettings validates them.
func ScheduleInterval(spec string, now time.Time) time.Duration {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return 0
	}
	next := s.Next(now)
	return s.Next(next).Sub(next)
}

// BackoffUntil reads a directory's last_poll and returns the time before
// which its scheduled polls are skipped; ok is false when the directory is
// not backing off. A poll asked for by hand is never held back.
func BackoffUntil(lastPoll json.RawMessage) (until time.Time, failures int, ok bool) {
	var lp LastPoll
	if len(lastPoll) == 0 || json.Unmarshal(lastPoll, &lp) != nil || lp.NextPollAt == nil || lp.ConsecutiveFailures == 0 {
		return time.Time{}, 0, false
	}
	return *lp.NextPollAt, lp.ConsecutiveFailures, true
}
