package queue

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Every job a worker runs ends in exactly one log line, written by the worker (jobLine), so
// that an operator can follow directories and endpoints by one message and one set of keys:
//
//	job        reconcile, poll or deliver
//	directory  the directory (reconcile, poll), or endpoint: the webhook endpoint (deliver)
//	task_id    the Asynq task
//	duration   seconds, as a float
//	outcome    ok, held, retry or error
//	...        what the handler reported: team, kind or mode, counts (Report)
//	err        the error, for retry and error
//
// The level follows the outcome: info for ok, warn for held (an admin has to look) and retry,
// error for a failure that will not be retried.
//
// Handlers add to the line through the context they are given (Report, ReportHeld,
// ReportFailed); they log no line of their own saying the job ended.

// Outcomes of a job, the "outcome" attribute of its line.
const (
	outcomeOK    = "ok"
	outcomeHeld  = "held"
	outcomeRetry = "retry"
	outcomeError = "error"
)

// jobReport is what a handler told about its run.
type jobReport struct {
	mu    sync.Mutex
	attrs []slog.Attr
	held  bool
	err   error // a failure the handler handled itself
}

type reportKey struct{}

func reportOf(ctx context.Context) *jobReport {
	r, _ := ctx.Value(reportKey{}).(*jobReport)
	return r
}

// Report adds attributes to the line the worker logs when the running job ends: the team,
// the kind of run, what it read and changed. Keys are snake_case and must not repeat the
// line's own (job, directory, endpoint, task_id, duration, outcome, err). Outside a job
// (ctx not from a worker) it does nothing.
func Report(ctx context.Context, attrs ...slog.Attr) {
	if r := reportOf(ctx); r != nil {
		r.mu.Lock()
		r.attrs = append(r.attrs, attrs...)
		r.mu.Unlock()
	}
}

// ReportHeld marks the running job as held back (the deletion guard kept its removals): it
// succeeded, and its line says outcome=held.
func ReportHeld(ctx context.Context) {
	if r := reportOf(ctx); r != nil {
		r.mu.Lock()
		r.held = true
		r.mu.Unlock()
	}
}

// ReportFailed records a failure the handler dealt with itself instead of returning it (a
// failed poll is retried by its schedule, not by the queue): the job's line says
// outcome=error, with err.
func ReportFailed(ctx context.Context, err error) {
	if r := reportOf(ctx); r != nil && err != nil {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}
}

// idKey is the attribute that names what a job of this kind works on.
func (k kind) idKey() string {
	if k == kindDeliver {
		return "endpoint"
	}
	return "directory"
}

// jobLine logs the one line of an ended job. herr is the handler's error, retry says whether
// Asynq runs the task again.
func jobLine(ctx context.Context, log *slog.Logger, rep *jobReport, elapsed time.Duration, herr error, retry bool, retried, maxRetry int) {
	rep.mu.Lock()
	attrs := append([]slog.Attr(nil), rep.attrs...)
	held, handled := rep.held, rep.err
	rep.mu.Unlock()

	outcome, level, msg := outcomeOK, slog.LevelInfo, "job done"
	switch {
	case herr != nil && retry:
		outcome, level, msg = outcomeRetry, slog.LevelWarn, "job failed; will retry"
		attrs = append(attrs, slog.Int("retry", retried+1), slog.Int("max_retry", maxRetry))
	case herr != nil:
		outcome, level, msg = outcomeError, slog.LevelError, "job failed"
		attrs = append(attrs, slog.Int("retries", retried))
	case handled != nil:
		outcome, level, msg, herr = outcomeError, slog.LevelError, "job failed", handled
	case held:
		outcome, level, msg = outcomeHeld, slog.LevelWarn, "job held"
	}
	head := []slog.Attr{slog.Float64("duration", elapsed.Seconds()), slog.String("outcome", outcome)}
	attrs = append(head, attrs...)
	if herr != nil {
		attrs = append(attrs, slog.String("err", herr.Error()))
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}
