package app

import (
	"fmt"
	"os"
	"time"
)

// Diagnostics for tests and incident work, set by environment variables
// (not flags: nobody should need them in normal operation):
//
//	ROSTER_RUN_LOG=/path   append "start|end <kind> <directory> <pid> <unix-nanos>"
//	                       lines for every reconcile and poll this process runs
//	ROSTER_FAULT_RECONCILE_DELAY=2s
//	                       hold every reconcile for that long before it writes,
//	                       inside its transaction (crash tests kill it there)
func (a *App) runLog(kind, dirID string) func() {
	path := os.Getenv("ROSTER_RUN_LOG")
	if path == "" {
		return func() {}
	}
	write := func(what string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		fmt.Fprintf(f, "%s %s %s %d %d\n", what, kind, dirID, os.Getpid(), time.Now().UnixNano())
		f.Close()
	}
	write("start")
	return func() { write("end") }
}

func (a *App) setupFaults() {
	if v := os.Getenv("ROSTER_FAULT_RECONCILE_DELAY"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			a.Log.Warn("fault injection: every reconcile waits before writing", "delay", d)
			a.Reconciler.BeforeApply = func(string) { time.Sleep(d) }
		}
	}
}
