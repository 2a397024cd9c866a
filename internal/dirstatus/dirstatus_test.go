package dirstatus

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/roster-dev/roster/store"
)

func TestFromStatus(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	for _, tc := range []struct {
		name                string
		d                   store.DirectoryStatus
		problem, backingOff bool
		lag                 float64 // -1: none
	}{
		{"ok", store.DirectoryStatus{State: store.StateOK, LastSyncAt: at(time.Minute)}, false, false, -1},
		{"never synced", store.DirectoryStatus{State: store.StateSyncing}, false, false, -1},
		{"error", store.DirectoryStatus{State: store.StateError, LastError: "x"}, true, false, -1},
		{"needs review", store.DirectoryStatus{State: store.StateNeedsReview}, true, false, -1},
		{"pending a little", store.DirectoryStatus{State: store.StateOK, Pending: 4, OldestPending: at(time.Minute)}, false, false, 60},
		{"pending long", store.DirectoryStatus{State: store.StateOK, Pending: 4, OldestPending: at(6 * time.Minute)}, true, false, 360},
		{"backing off", store.DirectoryStatus{State: store.StateOK, LastPoll: json.RawMessage(`{"result":"error","consecutive_failures":2,"next_poll_at":"2026-12-01T12:30:00Z"}`)}, true, true, -1},
		{"backing off, unschedulable", store.DirectoryStatus{State: store.StateOK, LastPoll: json.RawMessage(`{"result":"error","consecutive_failures":1}`)}, true, true, -1},
		{"recovered", store.DirectoryStatus{State: store.StateOK, LastPoll: json.RawMessage(`{"result":"ok"}`)}, false, false, -1},
		{"unreadable last poll", store.DirectoryStatus{State: store.StateOK, LastPoll: json.RawMessage(`{`)}, false, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := FromStatus(tc.d, now)
			if r.Problem() != tc.problem || r.BackingOff != tc.backingOff {
				t.Errorf("problem %v, backing off %v; want %v, %v", r.Problem(), r.BackingOff, tc.problem, tc.backingOff)
			}
			switch {
			case tc.lag < 0 && r.LagSeconds != nil:
				t.Errorf("lag = %v, want none", *r.LagSeconds)
			case tc.lag >= 0 && (r.LagSeconds == nil || *r.LagSeconds != tc.lag):
				t.Errorf("lag = %v, want %v", r.LagSeconds, tc.lag)
			}
		})
	}
}
