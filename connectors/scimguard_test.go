package connectors_test

import (
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
)

func TestSCIMSettings(t *testing.T) {
	for _, tt := range []struct {
		name, raw, err string
		enabled        bool
		n              int
		f              float64
		w              time.Duration
	}{
		{name: "empty is off with defaults", raw: ``, n: 50, f: 0.2, w: time.Hour},
		{name: "on", raw: `{"deletion_guard": {"enabled": true}}`, enabled: true, n: 50, f: 0.2, w: time.Hour},
		{name: "all set", raw: `{"deletion_guard": {"enabled": true, "max_removals": 0, "max_fraction": 0.5, "window": "10m"}}`, enabled: true, n: 0, f: 0.5, w: 10 * time.Minute},
		{name: "window in seconds", raw: `{"deletion_guard": {"window": 600}}`, n: 50, f: 0.2, w: 10 * time.Minute},
		{name: "negative count", raw: `{"deletion_guard": {"max_removals": -1}}`, err: "max_removals"},
		{name: "fraction above 1", raw: `{"deletion_guard": {"max_fraction": 1.5}}`, err: "max_fraction"},
		{name: "fraction 0", raw: `{"deletion_guard": {"max_fraction": 0}}`, err: "max_fraction"},
		{name: "short window", raw: `{"deletion_guard": {"window": "5s"}}`, err: "window"},
		{name: "long window", raw: `{"deletion_guard": {"window": "200h"}}`, err: "window"},
		{name: "unknown field", raw: `{"deletion_guard": {"enable": true}}`, err: "enable"},
		{name: "enabled as a string", raw: `{"deletion_guard": {"enabled": "yes"}}`, err: "enabled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := connectors.ParseSCIMSettings([]byte(tt.raw))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, f, w := s.DeletionGuard.Limits()
			if s.DeletionGuard.Enabled != tt.enabled || n != tt.n || f != tt.f || w != tt.w {
				t.Fatalf("got enabled %v, %d, %v, %s; want %v, %d, %v, %s", s.DeletionGuard.Enabled, n, f, w, tt.enabled, tt.n, tt.f, tt.w)
			}
		})
	}
}

func TestMergeSCIMSettings(t *testing.T) {
	stored := []byte(`{"deletion_guard": {"enabled": true, "max_removals": 7, "window": "10m"}}`)
	s, err := connectors.MergeSCIMSettings(stored, []byte(`{"deletion_guard": {"max_fraction": 0.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	n, f, w := s.DeletionGuard.Limits()
	if !s.DeletionGuard.Enabled || n != 7 || f != 0.5 || w != 10*time.Minute {
		t.Fatalf("merged = %+v (%d, %v, %s); want the stored fields kept and max_fraction 0.5", s, n, f, w)
	}
	if _, err := connectors.MergeSCIMSettings(stored, []byte(`{"deletion_guard": {"max_removals": -3}}`)); err == nil {
		t.Fatal("merge to a negative max_removals: no error")
	}
}
