package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/roster-dev/roster/internal/e2e"
)

// TestProfile runs a rosterload scenario against an in-process roster
// (embedded mode, or PostgreSQL+Redis with ROSTERLOAD_PG=1 and the
// ROSTER_TEST_* variables internal/testenv reads) and writes CPU, block
// and mutex profiles, since roster does not expose pprof. Client and
// server share the process: focus on roster's packages when reading.
//
//	ROSTERLOAD_PROFILE=/tmp/prof ROSTERLOAD_ARGS="-scenario creates -d 10s" \
//	    go test ./cmd/rosterload -run TestProfile -v -timeout 30m
//	go tool pprof -top -focus roster-dev /tmp/prof/cpu.pprof
func TestProfile(t *testing.T) {
	dir := os.Getenv("ROSTERLOAD_PROFILE")
	if dir == "" {
		t.Skip("set ROSTERLOAD_PROFILE=<dir> (and ROSTERLOAD_ARGS) to profile a scenario in-process")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mode := e2e.Modes()[0]
	if os.Getenv("ROSTERLOAD_PG") != "" {
		mode = e2e.Modes()[1]
	}
	r := e2e.Start(t, mode)
	args := append([]string{"-url", r.URL, "-admin-token", e2e.AdminToken}, strings.Fields(os.Getenv("ROSTERLOAD_ARGS"))...)

	runtime.SetBlockProfileRate(20_000) // one sample per 20 µs blocked
	runtime.SetMutexProfileFraction(5)
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code := run(args, &out, &errs)
	pprof.StopCPUProfile()
	cpu.Close()
	for _, name := range []string{"block", "mutex", "heap"} {
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	t.Logf("rosterload %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errs.String())
	if code != 0 {
		t.Errorf("rosterload exited %d", code)
	}
}
