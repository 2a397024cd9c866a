package app

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// Diagnostics for tests and incident work, set by environment variables
// (not flags: nobody should need them in normal operation):
//
//	ROSTER_RUN_LOG=/path   append "start|end <kind> <directory> <pid> <unix-nanos>"
//	                       lines for every reconcile and poll this process runs
//	ROSTER_DEBUG_PPROF=127.0.0.1:6060
//	                       serve Go's pprof profiles on that (loopback) address
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

// startPprof serves profiles when ROSTER_DEBUG_PPROF names an address.
func (a *App) startPprof() {
	addr := os.Getenv("ROSTER_DEBUG_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		a.Log.Warn("serving pprof", "addr", addr)
		if err := srv.ListenAndServe(); err != nil {
			a.Log.Warn("pprof", "err", err)
		}
	}()
}
