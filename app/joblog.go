package app

import (
	"context"
	"log/slog"

	"github.com/roster-dev/roster/queue"
	"github.com/roster-dev/roster/sync/poll"
	"github.com/roster-dev/roster/sync/reconcile"
	"github.com/roster-dev/roster/webhooks"
)

// What each job tells the line the queue logs when it ends (queue.Report):
// the team, the kind of run, and what it read and changed. Keys are the
// same across jobs: team, type (the directory's), kind or mode, then counts.

func reportReconcile(ctx context.Context, res reconcile.Result) {
	attrs := make([]slog.Attr, 0, 8)
	if res.TeamID != "" {
		attrs = append(attrs, slog.String("team", res.TeamID), slog.String("type", res.Type))
	}
	attrs = append(attrs, slog.String("mode", res.Mode), slog.Int("items", res.Pending),
		slog.Int("members", res.Members), slog.Int("groups", res.Groups), slog.Int("events", res.Changes))
	queue.Report(ctx, attrs...)
	if res.Held {
		queue.ReportHeld(ctx)
	}
}

func reportPoll(ctx context.Context, res poll.Result) {
	attrs := make([]slog.Attr, 0, 16)
	if res.TeamID != "" {
		attrs = append(attrs, slog.String("team", res.TeamID), slog.String("type", res.Type))
	}
	if res.Kind != "" {
		attrs = append(attrs, slog.String("kind", res.Kind))
	}
	attrs = append(attrs, slog.Int("users", res.Users), slog.Int("groups", res.Groups),
		slog.Int("memberships", res.Memberships))
	if res.Skipped > 0 {
		attrs = append(attrs, slog.Int("skipped", res.Skipped))
	}
	if u := res.Usage; u != nil {
		attrs = append(attrs, slog.Int64("items", u.Items), slog.Int64("requests", u.Requests),
			slog.Int64("pages", u.Pages), slog.Int64("throttled", u.Throttled))
	}
	if res.Held {
		attrs = append(attrs, slog.Int("would_remove", res.WouldRemove), slog.Int("active", res.Active))
	}
	if res.ConsecutiveFailures > 0 {
		attrs = append(attrs, slog.Int("consecutive_failures", res.ConsecutiveFailures))
		if res.NextPollAt != nil {
			attrs = append(attrs, slog.Time("next_poll_at", *res.NextPollAt))
		}
	}
	queue.Report(ctx, attrs...)
	if res.Held {
		queue.ReportHeld(ctx)
	}
}

func reportDeliver(ctx context.Context, ep *webhooks.Endpoint, res webhooks.Result) {
	attrs := []slog.Attr{slog.String("team", ep.TeamID), slog.String("state", string(ep.State.Status)),
		slog.Int("delivered", res.Delivered), slog.Int("skipped", res.Skipped)}
	if !res.RetryAt.IsZero() {
		attrs = append(attrs, slog.Time("retry_at", res.RetryAt))
	}
	queue.Report(ctx, attrs...)
}
