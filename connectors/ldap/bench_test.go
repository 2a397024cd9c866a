package ldap_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/testldap"
)

// cpuTime is this process's user+system CPU time (slapd's is not counted).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeap samples the heap while fn runs.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapInuse > peak.Load() {
		peak.Store(m.HeapInuse)
	}
	if p := peak.Load(); p > base.HeapInuse {
		return p - base.HeapInuse
	}
	return 0
}

// BenchmarkSlapd100k: ROSTER_TEST_LDAP=1 go test ./connectors/ldap -run '^$' -bench Slapd100k -benchtime 3x
func BenchmarkSlapd100k(b *testing.B) {
	sl := testldap.StartSlapd(b, testldap.SlapdOptions{Users: 100000, Groups: 5000, SizeLimit: 500})
	cfg := configFor(&sl.Dir)
	s := open(b, cfg)
	ctx := context.Background()

	b.Run("Full", func(b *testing.B) {
		var users, groups int
		var peak uint64
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			p := peakHeap(func() {
				snap, _, err := s.Full(ctx)
				if err != nil {
					b.Fatal(err)
				}
				users, groups = len(snap.Users), len(snap.Groups)
			})
			peak = max(peak, p)
		}
		if users != 100000 || groups != 5000 {
			b.Fatalf("users %d groups %d", users, groups)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	})

	seq := 0
	b.Run("Changes10", func(b *testing.B) {
		_, cur, err := s.Full(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			b.StopTimer()
			i := seq
			seq++
			// 10 changes: 5 mail changes, 2 adds, 2 memberships, 1 delete.
			for k := 0; k < 5; k++ {
				sl.Set(b, sl.BulkUserDN(i*10+k), "mail", fmt.Sprintf("new%d-%d@example.com", i, k))
			}
			a1 := sl.AddUser(b, fmt.Sprintf("bench-a-%d", i), fmt.Sprintf("a%d@example.com", i))
			sl.AddUser(b, fmt.Sprintf("bench-b-%d", i), fmt.Sprintf("b%d@example.com", i))
			sl.AddMember(b, sl.BulkGroupDN(10+i), a1)
			sl.AddMember(b, sl.BulkGroupDN(20+i), sl.BulkUserDN(99999-i))
			sl.Delete(b, sl.BulkUserDN(50000+i))
			b.StartTimer()
			d, next, err := s.Changes(ctx, cur)
			if err != nil {
				b.Fatal(err)
			}
			if len(d.Users) != 7 || len(d.Groups) != 2 || len(d.DeletedUsers) != 1 {
				b.Fatalf("delta: %d users %d groups %d deleted", len(d.Users), len(d.Groups), len(d.DeletedUsers))
			}
			cur = next
		}
	})
}
