package poll

import (
	"testing"
	"time"
)

func TestBackoffDoublesAndCaps(t *testing.T) {
	for _, tc := range []struct {
		failures int
		interval time.Duration
		want     time.Duration
	}{
		{1, time.Minute, 2 * time.Minute},
		{2, time.Minute, 4 * time.Minute},
		{5, time.Minute, 32 * time.Minute},
		{6, time.Minute, time.Hour},
		{1000, time.Minute, time.Hour},
		{1, 2 * time.Second, 4 * time.Second},
		// A schedule slower than the cap keeps its own pace.
		{3, 2 * time.Hour, 2 * time.Hour},
		{1, 45 * time.Minute, time.Hour},
	} {
		if got := backoff(tc.failures, tc.interval); got != tc.want {
			t.Errorf("backoff(%d, %s) = %s, want %s", tc.failures, tc.interval, got, tc.want)
		}
	}
}

func TestScheduleInterval(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 7, 30, 0, time.UTC)
	for spec, want := range map[string]time.Duration{
		"@every 2s":    2 * time.Second,
		"@every 5m":    5 * time.Minute,
		"*/10 * * * *": 10 * time.Minute,
		"@hourly":      time.Hour,
		"not a spec":   0,
	} {
		if got := ScheduleInterval(spec, now); got != want {
			t.Errorf("ScheduleInterval(%q) = %s, want %s", spec, got, want)
		}
	}
}
