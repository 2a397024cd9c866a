package webhooks

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Status is an endpoint's delivery state, as the admin API shows it.
type Status string

const (
	// Active: the last attempt delivered, or none was made yet.
	Active Status = "active"
	// Failing: at least one attempt on the head event failed; it is
	// retried at State.NextAttemptAt.
	Failing Status = "failing"
	// Disabled: nothing is sent until an admin enables the endpoint,
	// which resumes from the cursor.
	Disabled Status = "disabled"
)

// State is an endpoint's delivery progress: what the store keeps and
// the admin API shows.
type State struct {
	Status Status
	// Cursor is the id of the last event delivered (or passed over for
	// its type); "" is before the first event.
	Cursor string
	// FailingSince is the first failed attempt on the head event (the one
	// after Cursor); zero when that event has not failed.
	FailingSince time.Time
	// Attempts counts failed attempts on the head event.
	Attempts int
	// NextAttemptAt is when to try the head event again; zero means as
	// soon as there is an event.
	NextAttemptAt time.Time
	// LastError is the last failed attempt's Error; kept after recovery
	// for the admin API ("last error"), cleared by Enable.
	LastError string
	// DisabledReason says why Status is Disabled.
	DisabledReason string
}

// Enabled returns the state after an admin enables the endpoint: active,
// resuming from the cursor at once with a fresh retry budget.
func (s State) Enabled() State {
	return State{Status: Active, Cursor: s.Cursor}
}

// Replayed returns the state after an admin moves the cursor to after
// (an event id, "" for the start of the feed) to send again from there.
// The head event changes, so its failure count starts over; a disabled
// endpoint stays disabled until enabled.
func (s State) Replayed(after string) State {
	out := State{Status: Active, Cursor: after, LastError: s.LastError}
	if s.Status == Disabled {
		out.Status, out.DisabledReason = Disabled, s.DisabledReason
	}
	return out
}

// Policy is the retry schedule: the delay after the n-th failed attempt
// on an event is Initial·2^(n-1), at most Max, less up to Jitter of it at
// random; after GiveUpAfter since the event's first failure the endpoint
// is disabled.
type Policy struct {
	Initial     time.Duration // default 1 s
	Max         time.Duration // default 1 h
	Jitter      float64       // share of the delay taken off at random, default 0.2
	GiveUpAfter time.Duration // default 72 h
	// Rand returns a number in [0, 1); nil is math/rand/v2's. Tests fix
	// it.
	Rand func() float64
}

// DefaultPolicy is the schedule of issue 13: about 1 s doubling up to
// 1 h, for 3 days.
var DefaultPolicy = Policy{Initial: time.Second, Max: time.Hour, Jitter: 0.2, GiveUpAfter: 72 * time.Hour}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Max <= 0 {
		p.Max = DefaultPolicy.Max
	}
	if p.Jitter <= 0 || p.Jitter >= 1 {
		p.Jitter = DefaultPolicy.Jitter
	}
	if p.GiveUpAfter <= 0 {
		p.GiveUpAfter = DefaultPolicy.GiveUpAfter
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// Backoff returns the delay after the n-th failed attempt (n ≥ 1).
func (p Policy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	// Taking jitter off (never adding) keeps Max a true cap while
	// endpoints that failed together spread out.
	return d - time.Duration(p.Jitter*p.Rand()*float64(d))
}

// Advance is the state machine: the state after attempt a on the head
// event of an endpoint in state s. The attempt's end is "now", so the
// function is pure apart from the jitter. The result's NextAttemptAt says
// when to try next (zero: go on at once).
func (p Policy) Advance(s State, a Attempt) State {
	p = p.withDefaults()
	now := a.End()
	if a.Outcome == Delivered {
		// Even on an endpoint disabled while the request was in flight:
		// the receiver has the event, and must not get it twice.
		s.Cursor = a.EventID
		s.FailingSince, s.Attempts, s.NextAttemptAt = time.Time{}, 0, time.Time{}
		if s.Status != Disabled {
			s.Status = Active
		}
		return s
	}
	if s.Status == Disabled {
		return s
	}
	s.Attempts++
	s.LastError = a.Error
	if s.FailingSince.IsZero() {
		s.FailingSince = a.At
	}
	switch {
	case a.Outcome == Gone:
		return disable(s, "the receiver answered 410 Gone")
	case now.Sub(s.FailingSince) >= p.GiveUpAfter:
		return disable(s, fmt.Sprintf("event %s kept failing for %s (%d attempts)", a.EventID, p.GiveUpAfter, s.Attempts))
	}
	delay := max(p.Backoff(s.Attempts), min(a.RetryAfter, p.Max))
	s.Status = Failing
	// The last try falls on the deadline itself rather than up to Max
	// past it.
	s.NextAttemptAt = now.Add(delay)
	if deadline := s.FailingSince.Add(p.GiveUpAfter); s.NextAttemptAt.After(deadline) {
		s.NextAttemptAt = deadline
	}
	return s
}

func disable(s State, reason string) State {
	s.Status = Disabled
	s.DisabledReason = reason
	s.NextAttemptAt = time.Time{}
	return s
}
