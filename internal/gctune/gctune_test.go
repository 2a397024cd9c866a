package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 800},
		{4 * mib, 800},   // 64/4 = 1600 %, capped
		{16 * mib, 400},  // 64 MiB of headroom
		{32 * mib, 200},  //
		{64 * mib, 100},  // the default from here on
		{500 * mib, 100}, // never below the default
	} {
		if got := Percent(c.live, 64*mib); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live/mib, got, c.want)
		}
	}
}

func TestTunerFollowsTheLiveHeap(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Fatal("GOGC is set in the environment: the tuner would not start")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tu := Start(64 << 20)
	defer tu.Stop()
	runtime.GC()
	// With a small live heap the tuner raises GOGC above the default.
	waitFor(t, func() bool { return tu.Percent() > 100 })
	// Keep 200 MiB live: after the next collections GOGC is back to 100.
	keep := make([][]byte, 200)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
		keep[i][0] = 1
	}
	runtime.GC()
	runtime.GC()
	waitFor(t, func() bool { return tu.Percent() == 100 })
	runtime.KeepAlive(keep)
	tu.Stop()
	if old := debug.SetGCPercent(100); old != 100 {
		t.Fatalf("Stop left GOGC at %d", old)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
