package reconcile_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/reconcile"
)

// Directory size of the reconcile benchmarks (the foundation issue's
// target): users, groups, groups per user.
const (
	benchUsers         = 100_000
	benchGroups        = 10_000
	benchGroupsPerUser = 5
)

// benchSize returns the users and groups of the benchmark directory: the
// target's, or a hundredth of it under -short, which only checks that the
// benchmarks still run (their figures then mean nothing).
func benchSize() (users, groups int) {
	if testing.Short() {
		return benchUsers / 100, benchGroups / 100
	}
	return benchUsers, benchGroups
}

func benchEngine(b *testing.B) testenv.Engine {
	if os.Getenv("ROSTER_BENCH_ENGINE") == "postgres" {
		return testenv.Engines()[1]
	}
	return testenv.Engines()[0]
}

// seedDirectory fills a directory's mirror in bulk.
func seedDirectory(b *testing.B, s *store.Store, team, dir string, users, groups, perUser int) {
	b.Helper()
	ctx := context.Background()
	if err := s.CreateTeam(ctx, &store.Team{ID: team, Name: "Bench", Plan: store.PlanEnterprise, SSOStatus: "active", DefaultLimitCents: cents(1000)}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateDirectory(ctx, &store.Directory{ID: dir, TeamID: team, Type: "scim"}); err != nil {
			return err
		}
		for g := 0; g < groups; g++ {
			if err := tx.PutGroup(ctx, &store.Group{DirectoryID: dir, ID: fmt.Sprintf("g%05d", g), DisplayName: fmt.Sprintf("Group %d", g)}, now); err != nil {
				return err
			}
			if g%10 == 0 { // every tenth group sets a limit
				if err := tx.SetGroupLimit(ctx, team, fmt.Sprintf("g%05d", g), true, cents(int64(g))); err != nil {
					return err
				}
			}
		}
		batch := make([]*store.User, 0, 1000)
		var rows []store.MembershipRow
		for u := 0; u < users; u++ {
			id := fmt.Sprintf("u%06d", u)
			email := id + "@example.com"
			batch = append(batch, &store.User{DirectoryID: dir, ID: id, UserName: email, Email: email, DisplayName: "User " + strconv.Itoa(u), Active: true,
				Emails: []store.Email{{Value: email, Type: "work", Primary: true}}})
			for k := 0; k < perUser; k++ {
				rows = append(rows, store.MembershipRow{GroupID: fmt.Sprintf("g%05d", (u*7+k*1543)%groups), MemberID: id, MemberType: store.MemberUser})
			}
			if len(batch) == cap(batch) {
				if err := tx.InsertUsers(ctx, batch, now); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := tx.InsertUsers(ctx, batch, now); err != nil {
			return err
		}
		return tx.InsertMemberships(ctx, dir, rows, now)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// peakRSS reads the process's peak resident set size in MiB, and resets it
// when reset is set (Linux: /proc/self/clear_refs).
func peakRSS(reset bool) float64 {
	if reset {
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		return 0
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// BenchmarkFullReconcile measures a first full reconcile of a 100,000-user,
// 10,000-group directory (500,000 memberships) into an empty roster.
func BenchmarkFullReconcile(b *testing.B) {
	s := testenv.OpenStore(b, benchEngine(b))
	users, groups := benchSize()
	seedDirectory(b, s, "team", "dir", users, groups, benchGroupsPerUser)
	r := &reconcile.Reconciler{Store: s}
	ctx := context.Background()
	b.ResetTimer()
	var peak float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := s.WithTx(ctx, func(tx *store.Tx) error { return tx.ResetRoster(ctx, "dir") }); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		debug.FreeOSMemory()
		peakRSS(true)
		b.StartTimer()
		res, err := r.Reconcile(ctx, "dir")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak = max(peak, peakRSS(false))
		if res.Mode != "full" || res.Changes < users {
			b.Fatalf("reconcile = %+v, want a full run adding %d members", res, users)
		}
		b.StartTimer()
	}
	b.ReportMetric(peak, "peak-RSS-MiB")
}

// BenchmarkSingleMembershipChange measures one membership change (add, then
// remove, alternately) against that directory, reconciled incrementally.
func BenchmarkSingleMembershipChange(b *testing.B) {
	s := testenv.OpenStore(b, benchEngine(b))
	users, groups := benchSize()
	seedDirectory(b, s, "team", "dir", users, groups, benchGroupsPerUser)
	r := &reconcile.Reconciler{Store: s}
	ctx := context.Background()
	// A group no seeded user is in, with a limit, so each change moves a
	// member's effective limit too.
	err := s.WithTx(ctx, func(tx *store.Tx) error {
		if err := tx.PutGroup(ctx, &store.Group{DirectoryID: "dir", ID: "gbench", DisplayName: "Bench"}, time.Now()); err != nil {
			return err
		}
		return tx.SetGroupLimit(ctx, "team", "gbench", true, cents(1_000_000))
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, "dir"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		user := fmt.Sprintf("u%06d", (i/2)%users)
		err := s.WithTx(ctx, func(tx *store.Tx) error {
			if i%2 == 0 {
				_, err := tx.AddMembers(ctx, "dir", "gbench", []store.Member{{ID: user, Type: store.MemberUser}}, time.Now())
				return err
			}
			_, err := tx.RemoveMembers(ctx, "dir", "gbench", []string{user}, time.Now())
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Reconcile(ctx, "dir")
		if err != nil {
			b.Fatal(err)
		}
		if res.Mode != "incremental" || res.Changes < 2 {
			b.Fatalf("reconcile = %+v, want an incremental run with a membership and a limit event", res)
		}
	}
}
