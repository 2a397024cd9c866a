package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// EventSource reads a team's event feed. The store implements it.
type EventSource interface {
	// EventsAfter returns up to limit events of the team's feed after the
	// event id cursor ("" is the start of the feed), in feed order; none
	// when the endpoint is caught up.
	EventsAfter(ctx context.Context, teamID, cursor string, limit int) ([]Event, error)
}

// StateSink keeps endpoints' states durably. The store implements it.
type StateSink interface {
	// SaveState stores endpoint endpointID's new state to, and the
	// attempt that led there (nil when the cursor only moved over events
	// of other types), in one durable step. It must apply only if the
	// stored state is still from (at least its Cursor and Status: an
	// admin may have replayed, enabled or deleted the endpoint while a
	// request was in flight) and return ErrStateChanged otherwise. Run
	// sends the next event only after SaveState returned nil.
	SaveState(ctx context.Context, endpointID string, from, to State, attempt *Attempt) error
}

// ErrStateChanged is what a StateSink returns when the stored state is
// no longer the one Run started from. Run stops; the caller reloads the
// endpoint and runs again.
var ErrStateChanged = errors.New("endpoint state changed meanwhile")

// Runner delivers an endpoint's events in feed order, one at a time.
type Runner struct {
	Client *Client
	Policy Policy // zero fields take DefaultPolicy's
	// PageSize is how many events one EventsAfter call asks for; default
	// 100.
	PageSize int
	// MaxEvents bounds the deliveries of one Run so that one endpoint
	// with a long backlog does not hold a worker; 0 is no bound.
	MaxEvents int
	// Logger gets a line when an endpoint fails, recovers or is disabled;
	// nil is slog.Default().
	Logger *slog.Logger
}

// Result says how a Run ended. With More false and RetryAt zero the
// endpoint is caught up (or disabled: see its State) and waits for the
// next event.
type Result struct {
	Delivered int  // events answered 2xx
	Skipped   int  // events passed over for their type
	More      bool // stopped at MaxEvents with events left: run again soon
	// RetryAt is when the head event is due again after a failure.
	RetryAt time.Time
}

// Run sends ep's events after its cursor, in feed order, each only after
// a 2xx for the one before and after SaveState stored that 2xx. It stops
// at the first failure (Result.RetryAt says when to run again), when
// caught up, at MaxEvents, or when disabled. A run before
// ep.State.NextAttemptAt sends nothing. ep.State follows what was saved.
//
// Errors are the source's, the sink's (ErrStateChanged among them) and
// ctx's; ep.State is then the last state saved. An event whose 2xx could
// not be saved is sent again by a later run, with the same webhook-id.
func (r *Runner) Run(ctx context.Context, ep *Endpoint, src EventSource, sink StateSink) (Result, error) {
	var res Result
	now := r.now()
	if ep.State.Status == Disabled {
		return res, nil
	}
	if ep.State.NextAttemptAt.After(now) {
		res.RetryAt = ep.State.NextAttemptAt
		return res, nil
	}
	pageSize := r.PageSize
	if pageSize <= 0 {
		pageSize = 100
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}

	// skipped is the id of the last event passed over and not yet saved.
	var skipped string
	saveSkipped := func() error {
		if skipped == "" {
			return nil
		}
		next := skipTo(ep.State, skipped)
		if err := sink.SaveState(ctx, ep.ID, ep.State, next, nil); err != nil {
			return fmt.Errorf("save webhook cursor: %w", err)
		}
		ep.State, skipped = next, ""
		return nil
	}

	for {
		cursor := ep.State.Cursor
		if skipped != "" {
			cursor = skipped
		}
		evs, err := src.EventsAfter(ctx, ep.TeamID, cursor, pageSize)
		if err != nil {
			return res, fmt.Errorf("read events: %w", err)
		}
		if len(evs) == 0 {
			return res, saveSkipped()
		}
		for _, ev := range evs {
			if !ep.Wants(ev.Type) {
				skipped = ev.ID
				res.Skipped++
				continue
			}
			if r.MaxEvents > 0 && res.Delivered >= r.MaxEvents {
				res.More = true
				return res, saveSkipped()
			}
			if err := saveSkipped(); err != nil {
				return res, err
			}
			a := r.Client.Deliver(ctx, ep, ev)
			if a.Outcome != Delivered && ctx.Err() != nil {
				// A shutdown, not the receiver's fault: no attempt is
				// counted, and the event goes again on the next run.
				return res, ctx.Err()
			}
			from := ep.State
			next := r.Policy.Advance(from, a)
			if err := saveAttempt(ctx, sink, ep.ID, from, next, &a); err != nil {
				return res, fmt.Errorf("save webhook attempt: %w", err)
			}
			ep.State = next
			logTransition(log, ep, from, next, &a)
			if a.Outcome != Delivered {
				res.RetryAt = next.NextAttemptAt
				return res, nil
			}
			res.Delivered++
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
	}
}

// now is the Client's clock, which also stamps the attempts.
func (r *Runner) now() time.Time { return r.Client.opts.Now() }

// saveAttempt saves an attempt's outcome. A 2xx is saved even if ctx
// ends now: the receiver has the event, and would otherwise get it once
// more.
func saveAttempt(ctx context.Context, sink StateSink, id string, from, to State, a *Attempt) error {
	if a.Outcome == Delivered {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	return sink.SaveState(ctx, id, from, to, a)
}

// skipTo is the state after passing over events up to id for their type.
// If the head event had failed and is now among them (the endpoint's
// event types changed), its failure record goes with it.
func skipTo(s State, id string) State {
	s.Cursor = id
	s.FailingSince, s.Attempts, s.NextAttemptAt = time.Time{}, 0, time.Time{}
	if s.Status == Failing {
		s.Status = Active
	}
	return s
}

func logTransition(log *slog.Logger, ep *Endpoint, from, to State, a *Attempt) {
	switch {
	case to.Status == Disabled && from.Status != Disabled:
		log.Warn("webhook endpoint disabled", "endpoint", *ep, "event_id", a.EventID,
			"status_code", a.StatusCode, "err", a.Error, "reason", to.DisabledReason)
	case to.Status == Failing && from.Status != Failing:
		log.Info("webhook endpoint failing", "endpoint", *ep, "event_id", a.EventID,
			"status_code", a.StatusCode, "err", a.Error, "next_attempt_at", to.NextAttemptAt)
	case to.Status == Failing:
		log.Debug("webhook delivery failed again", "endpoint", *ep, "event_id", a.EventID,
			"attempts", to.Attempts, "status_code", a.StatusCode, "err", a.Error, "next_attempt_at", to.NextAttemptAt)
	case to.Status == Active && from.Status == Failing:
		log.Info("webhook endpoint recovered", "endpoint", *ep, "event_id", a.EventID,
			"failed_attempts", from.Attempts, "failing_for", a.End().Sub(from.FailingSince))
	}
}
