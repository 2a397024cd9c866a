package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/logtest"
)

// TestJobLine checks that every job ends in exactly one line, at the level of its outcome,
// with the handler's report, and that no key repeats (the caller's component included).
func TestJobLine(t *testing.T) {
	forEachBackend(t, func(t *testing.T, env *testEnv) {
		tests := []struct {
			name      string
			handler   func(ctx context.Context, runs int32) error
			wantLines []string // "level outcome", one per run
		}{
			{"ok", func(ctx context.Context, _ int32) error {
				Report(ctx, slog.String("team", "t1"), slog.Int("changes", 3))
				return nil
			}, []string{"INFO ok"}},
			{"held", func(ctx context.Context, _ int32) error {
				Report(ctx, slog.String("team", "t1"))
				ReportHeld(ctx)
				return nil
			}, []string{"WARN held"}},
			{"handled failure", func(ctx context.Context, _ int32) error {
				ReportFailed(ctx, errors.New("ldap down"))
				return nil
			}, []string{"ERROR error"}},
			{"retried then ok", func(ctx context.Context, runs int32) error {
				if runs == 1 {
					return errors.New("database busy")
				}
				Report(ctx, slog.String("team", "t1"))
				return nil
			}, []string{"WARN retry", "INFO ok"}},
			{"retries exhausted", func(ctx context.Context, _ int32) error {
				return errors.New("database gone")
			}, []string{"WARN retry", "ERROR error"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				env := &testEnv{name: env.name, url: env.url, ns: testNamespace()}
				var logs logtest.Capture
				if os.Getenv("ROSTER_TEST_LOG") != "" {
					logs.Also = os.Stderr
				}
				q := env.open(t, func(c *Config) {
					c.MaxRetry = 1
					c.Logger = logs.Logger().With("component", "queue") // as the app does
				})
				var runs atomic.Int32
				startWorker(t, q, Handlers{Reconcile: func(ctx context.Context, id string) error {
					return tt.handler(ctx, runs.Add(1))
				}})
				if err := q.TriggerReconcile(context.Background(), "d1"); err != nil {
					t.Fatal(err)
				}
				jobLines := func() []logtest.Line {
					lines, problems := logs.Lines()
					for _, p := range problems {
						t.Errorf("bad line: %s", p)
					}
					var out []logtest.Line
					for _, l := range lines {
						if l.Str("job") == "reconcile" && l.Str("outcome") != "" {
							out = append(out, l)
						}
					}
					return out
				}
				waitFor(t, 5*time.Second, fmt.Sprintf("%d job lines", len(tt.wantLines)), func() bool {
					return len(jobLines()) >= len(tt.wantLines)
				})
				waitFor(t, 5*time.Second, "the key to go idle", func() bool { return len(stateOf(t, q, kindReconcile, "d1")) == 0 })
				time.Sleep(100 * time.Millisecond) // a second line for the same run would show by now
				got := jobLines()
				if len(got) != len(tt.wantLines) {
					t.Fatalf("got %d job lines, want %d:\n%s", len(got), len(tt.wantLines), logs.Text())
				}
				for i, l := range got {
					if s := l.Level() + " " + l.Str("outcome"); s != tt.wantLines[i] {
						t.Errorf("line %d: got %q, want %q: %s", i, s, tt.wantLines[i], l.Raw)
					}
					if l.Str("directory") != "d1" || l.Str("task_id") == "" || l.Str("component") != "queue" {
						t.Errorf("line %d lacks directory, task_id or component: %s", i, l.Raw)
					}
					if _, ok := l.Attrs["duration"].(float64); !ok {
						t.Errorf("line %d: duration is not seconds as a number: %s", i, l.Raw)
					}
					if o := l.Str("outcome"); (o == "error" || o == "retry") && l.Str("err") == "" {
						t.Errorf("line %d: a failure without its error: %s", i, l.Raw)
					}
				}
				if last := got[len(got)-1]; last.Str("outcome") == "ok" && last.Str("team") != "t1" {
					t.Errorf("the handler's report is missing: %s", last.Raw)
				}
			})
		}
	})
}
