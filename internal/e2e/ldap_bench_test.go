package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/app"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/internal/testldap"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/poll"
	"github.com/roster-dev/roster/sync/reconcile"
)

// BenchmarkLDAPSync measures, end to end through the store: a first full
// sync of 100,000 users and 5,000 groups from slapd into an empty roster
// (poll + reconcile), then incremental polls that each carry 10 changes.
func BenchmarkLDAPSync(b *testing.B) {
	sl := testldap.StartSlapd(b, testldap.SlapdOptions{Users: 100000, Groups: 5000, SizeLimit: 500})
	engine := testenv.Engines()[0]
	if os.Getenv("ROSTER_BENCH_ENGINE") == "postgres" {
		engine = testenv.Engines()[1]
	}
	s := testenv.OpenStore(b, engine)
	ctx := context.Background()
	if err := s.CreateTeam(ctx, &store.Team{ID: "t", Name: "T", Plan: "enterprise", SSOStatus: "active"}); err != nil {
		b.Fatal(err)
	}
	settings, _ := json.Marshal(map[string]any{"url": sl.URL, "bind_dn": sl.ServiceDN, "bind_password": sl.ServicePassword,
		"base_dn": sl.BaseDN, "deletion_guard": map[string]any{"max_removals": 1000000, "max_fraction": 1.0}})
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		return tx.CreateDirectory(ctx, &store.Directory{ID: "d", TeamID: "t", Type: "ldap", Settings: settings})
	})
	if err != nil {
		b.Fatal(err)
	}
	rec := &reconcile.Reconciler{Store: s}
	poller := &poll.Poller{Store: s, Types: app.ConnectorTypes()}
	syncOnce := func() {
		if err := poller.Poll(ctx, "d"); err != nil {
			b.Fatal(err)
		}
		if _, err := rec.Reconcile(ctx, "d"); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Full100k", func(b *testing.B) {
		if b.N > 1 {
			b.Skip("run with -benchtime 1x: a first sync happens once")
		}
		runtime.GC()
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		start := time.Now()
		syncOnce()
		b.ReportMetric(time.Since(start).Seconds(), "s/sync")
		b.ReportMetric(vmHWM(), "peak-RSS-MiB")
		c, _ := s.CountDirectory(ctx, "d")
		if c.Members != 100000 {
			b.Fatalf("members = %d, want 100000", c.Members)
		}
	})
	b.Run("Incremental10", func(b *testing.B) {
		// Ten rounds per iteration, each an incremental poll carrying 10
		// changed entries, then the reconcile.
		const rounds = 10
		var pollTime, recTime time.Duration
		for i := 0; i < b.N; i++ {
			for round := 0; round < rounds; round++ {
				b.StopTimer()
				for k := 0; k < 10; k++ {
					u := ((i*rounds+round)*10 + k) % 100000
					sl.Set(b, sl.BulkUserDN(u), "mail", fmt.Sprintf("changed%d-%d@example.com", i*rounds+round, u))
				}
				b.StartTimer()
				t0 := time.Now()
				if err := poller.Poll(ctx, "d"); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := rec.Reconcile(ctx, "d"); err != nil {
					b.Fatal(err)
				}
				pollTime += t1.Sub(t0)
				recTime += time.Since(t1)
			}
		}
		n := float64(b.N * rounds)
		b.ReportMetric(float64(pollTime.Milliseconds())/n, "poll-ms")
		b.ReportMetric(float64(recTime.Microseconds())/1000/n, "reconcile-ms")
		d, _ := s.GetDirectory(ctx, "d")
		if d.CursorKind != "syncrepl" {
			b.Fatalf("cursor kind = %q, want an incremental poll", d.CursorKind)
		}
	})
}

func vmHWM() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return -1
}
