package webhooks

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func fixedRand(v float64) func() float64 { return func() float64 { return v } }

func TestBackoff(t *testing.T) {
	noJitter := Policy{Rand: fixedRand(0)}
	want := []time.Duration{
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second,
		1024 * time.Second, 2048 * time.Second, time.Hour, time.Hour,
	}
	for i, w := range want {
		if got := noJitter.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := noJitter.Backoff(10_000); got != time.Hour {
		t.Errorf("Backoff(10000) = %v, want the 1h cap", got)
	}
	// Jitter only takes off, up to 20 %.
	for _, r := range []float64{0, 0.25, 0.5, 0.999} {
		p := Policy{Rand: fixedRand(r)}
		for n := 1; n <= 20; n++ {
			base := noJitter.Backoff(n)
			got := p.Backoff(n)
			if got > base || got < base-base/5 {
				t.Errorf("rand %v: Backoff(%d) = %v, want in [%v, %v]", r, n, got, base-base/5, base)
			}
		}
	}
	// The real random source stays in bounds too, and spreads.
	seen := map[time.Duration]bool{}
	for range 100 {
		d := DefaultPolicy.Backoff(14)
		if d > time.Hour || d < 48*time.Minute {
			t.Fatalf("DefaultPolicy.Backoff(14) = %v, want in [48m, 1h]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("100 jittered delays took only %d values", len(seen))
	}
}

func TestAdvance(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := Policy{Rand: fixedRand(0)}
	attempt := func(id string, at time.Time, o Outcome, errText string) Attempt {
		return Attempt{EventID: id, At: at, Duration: 100 * time.Millisecond, Outcome: o, Error: errText}
	}
	end := func(at time.Time) time.Time { return at.Add(100 * time.Millisecond) }
	tests := []struct {
		name string
		p    Policy
		in   State
		a    Attempt
		want State
	}{
		{
			name: "delivered moves the cursor",
			in:   State{Status: Active, Cursor: "4"},
			a:    attempt("5", t0, Delivered, ""),
			want: State{Status: Active, Cursor: "5"},
		},
		{
			name: "delivered from the start of the feed",
			in:   State{},
			a:    attempt("1", t0, Delivered, ""),
			want: State{Status: Active, Cursor: "1"},
		},
		{
			name: "first failure: failing, retry in 1s",
			in:   State{Status: Active, Cursor: "4"},
			a:    attempt("5", t0, Retry, "HTTP 500"),
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 1, NextAttemptAt: end(t0).Add(time.Second), LastError: "HTTP 500"},
		},
		{
			name: "fourth failure doubles to 8s and keeps FailingSince",
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 3, NextAttemptAt: t0.Add(7 * time.Second), LastError: "HTTP 500"},
			a:    attempt("5", t0.Add(7*time.Second), Retry, "timeout after 10s"),
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 4, NextAttemptAt: end(t0.Add(7 * time.Second)).Add(8 * time.Second), LastError: "timeout after 10s"},
		},
		{
			name: "delay capped at 1h",
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 30},
			a:    attempt("5", t0.Add(20*time.Hour), Retry, "HTTP 502"),
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 31, NextAttemptAt: end(t0.Add(20 * time.Hour)).Add(time.Hour), LastError: "HTTP 502"},
		},
		{
			name: "jitter takes up to 20 % off",
			p:    Policy{Rand: fixedRand(0.5)},
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 30},
			a:    attempt("5", t0.Add(20*time.Hour), Retry, "HTTP 502"),
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 31, NextAttemptAt: end(t0.Add(20 * time.Hour)).Add(54 * time.Minute), LastError: "HTTP 502"},
		},
		{
			name: "Retry-After lengthens the delay",
			in:   State{Status: Active, Cursor: "4"},
			a:    Attempt{EventID: "5", At: t0, Outcome: Retry, Error: "HTTP 429", RetryAfter: 2 * time.Minute},
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 1, NextAttemptAt: t0.Add(2 * time.Minute), LastError: "HTTP 429"},
		},
		{
			name: "Retry-After never beyond the cap",
			in:   State{Status: Active, Cursor: "4"},
			a:    Attempt{EventID: "5", At: t0, Outcome: Retry, Error: "HTTP 503", RetryAfter: 48 * time.Hour},
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 1, NextAttemptAt: t0.Add(time.Hour), LastError: "HTTP 503"},
		},
		{
			name: "the last retry falls on the 3-day deadline",
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 80},
			a:    attempt("5", t0.Add(71*time.Hour+30*time.Minute), Retry, "HTTP 500"),
			want: State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 81, NextAttemptAt: t0.Add(72 * time.Hour), LastError: "HTTP 500"},
		},
		{
			name: "a failure 3 days after the first disables",
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 83, NextAttemptAt: t0.Add(72 * time.Hour)},
			a:    attempt("5", t0.Add(72*time.Hour), Retry, "HTTP 500"),
			want: State{Status: Disabled, Cursor: "4", FailingSince: t0, Attempts: 84, LastError: "HTTP 500", DisabledReason: "event 5 kept failing for 72h0m0s (84 attempts)"},
		},
		{
			name: "a shorter give-up",
			p:    Policy{Rand: fixedRand(0), GiveUpAfter: time.Minute},
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 5},
			a:    attempt("5", t0.Add(time.Minute), Retry, "HTTP 500"),
			want: State{Status: Disabled, Cursor: "4", FailingSince: t0, Attempts: 6, LastError: "HTTP 500", DisabledReason: "event 5 kept failing for 1m0s (6 attempts)"},
		},
		{
			name: "410 disables at once",
			in:   State{Status: Active, Cursor: "4"},
			a:    attempt("5", t0, Gone, "HTTP 410 Gone"),
			want: State{Status: Disabled, Cursor: "4", FailingSince: t0, Attempts: 1, LastError: "HTTP 410 Gone", DisabledReason: "the receiver answered 410 Gone"},
		},
		{
			name: "410 while failing disables too",
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 2, NextAttemptAt: t0.Add(3 * time.Second)},
			a:    attempt("5", t0.Add(3*time.Second), Gone, "HTTP 410 Gone"),
			want: State{Status: Disabled, Cursor: "4", FailingSince: t0, Attempts: 3, LastError: "HTTP 410 Gone", DisabledReason: "the receiver answered 410 Gone"},
		},
		{
			name: "recovery clears the failure record, keeps the last error",
			in:   State{Status: Failing, Cursor: "4", FailingSince: t0, Attempts: 4, NextAttemptAt: t0.Add(15 * time.Second), LastError: "HTTP 500"},
			a:    attempt("5", t0.Add(15*time.Second), Delivered, ""),
			want: State{Status: Active, Cursor: "5", LastError: "HTTP 500"},
		},
		{
			name: "a failure on a disabled endpoint changes nothing",
			in:   State{Status: Disabled, Cursor: "4", DisabledReason: "x"},
			a:    attempt("5", t0, Retry, "HTTP 500"),
			want: State{Status: Disabled, Cursor: "4", DisabledReason: "x"},
		},
		{
			name: "a 2xx that lands after disabling still moves the cursor",
			in:   State{Status: Disabled, Cursor: "4", DisabledReason: "x"},
			a:    attempt("5", t0, Delivered, ""),
			want: State{Status: Disabled, Cursor: "5", DisabledReason: "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := p
			if tt.p.Rand != nil {
				pol = tt.p
			}
			got := pol.Advance(tt.in, tt.a)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Advance (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnabledAndReplayed(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	disabled := State{Status: Disabled, Cursor: "9", FailingSince: t0, Attempts: 84, LastError: "HTTP 500", DisabledReason: "event 10 kept failing"}
	if diff := cmp.Diff(State{Status: Active, Cursor: "9"}, disabled.Enabled()); diff != "" {
		t.Errorf("Enabled (-want +got):\n%s", diff)
	}
	failing := State{Status: Failing, Cursor: "9", FailingSince: t0, Attempts: 3, NextAttemptAt: t0.Add(time.Minute), LastError: "HTTP 500"}
	if diff := cmp.Diff(State{Status: Active, Cursor: "3", LastError: "HTTP 500"}, failing.Replayed("3")); diff != "" {
		t.Errorf("Replayed on a failing endpoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(State{Status: Disabled, Cursor: "", LastError: "HTTP 500", DisabledReason: "event 10 kept failing"}, disabled.Replayed("")); diff != "" {
		t.Errorf("Replayed on a disabled endpoint (-want +got):\n%s", diff)
	}
}

// The whole schedule without jitter: attempts at 0, 1 s, 3 s, 7 s, ...
// doubling to 2048 s, then hourly, the last on the deadline: 84 attempts
// in 3 days, then disabled.
func TestScheduleOverThreeDays(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := Policy{Rand: fixedRand(0)}
	s := State{Status: Active, Cursor: "4"}
	at := t0
	var gaps []time.Duration
	for n := 1; ; n++ {
		s = p.Advance(s, Attempt{EventID: "5", At: at, Outcome: Retry, Error: "HTTP 500"})
		if s.Status == Disabled {
			if n != 84 || !at.Equal(t0.Add(72*time.Hour)) {
				t.Fatalf("disabled after attempt %d at %v, want attempt 84 at %v", n, at.Sub(t0), 72*time.Hour)
			}
			break
		}
		if n > 200 {
			t.Fatal("never disabled")
		}
		gaps = append(gaps, s.NextAttemptAt.Sub(at))
		at = s.NextAttemptAt
	}
	for i, g := range gaps[:12] {
		if want := time.Second << i; g != want {
			t.Errorf("gap %d = %v, want %v", i, g, want)
		}
	}
	for i, g := range gaps[12:] {
		if g > time.Hour || g <= 0 {
			t.Errorf("gap %d = %v, want at most 1h", i+12, g)
		}
	}
	if !strings.Contains(s.DisabledReason, "84 attempts") {
		t.Errorf("reason %q", s.DisabledReason)
	}
}
