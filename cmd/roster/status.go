package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/internal/dirstatus"
	"github.com/roster-dev/roster/store"
)

// status prints one row per directory, read from the store a server uses
// (read-only: it runs beside a live server). Exit 0, 1 on a store error, 2
// on bad flags.
func status(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	fs := flag.NewFlagSet("roster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := config.Default()
	var (
		configPath  = fs.String("config", "", "YAML configuration file, as for roster serve")
		dataDir     = fs.String("data-dir", def.DataDir, "folder of the SQLite database (ROSTER_DATA_DIR)")
		databaseURL = fs.String("database-url", "", "empty for SQLite in the data folder, or postgres://... of a scaled set-up (ROSTER_DATABASE_URL)")
		asJSON      = fs.Bool("json", false, "print a JSON array (fields as GET /api/v1/directories answers)")
		team        = fs.String("team", "", "only this team (id or name)")
		state       = fs.String("state", "", "only this state: "+strings.Join(dirstatus.States, ", "))
		typ         = fs.String("type", "", "only this directory type: scim, ldap, google, msgraph, okta")
		problems    = fs.Bool("problems", false, fmt.Sprintf("only directories in error or needs_review, backing off, or with a change pending over %s", dirstatus.LongPending))
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: roster status [flags]\n\nPrints each directory with its team, type, state, last sync, pending changes, lag,\nbackoff and last error, read (read-only) from the store of --data-dir or --database-url.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "roster status: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	if *state != "" && !slices.Contains(dirstatus.States, *state) {
		fmt.Fprintf(stderr, "roster status: --state %q: want one of %s\n", *state, strings.Join(dirstatus.States, ", "))
		return 2
	}
	cfg := config.Default()
	if *configPath != "" {
		if err := cfg.LoadFile(*configPath); err != nil {
			fmt.Fprintf(stderr, "roster: %v\n", err)
			return 2
		}
	}
	cfg.LoadEnv(os.LookupEnv)
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data-dir":
			cfg.DataDir = *dataDir
		case "database-url":
			cfg.DatabaseURL = *databaseURL
		}
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := store.OpenReadOnly(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "roster status: %v\n", err)
		return 1
	}
	defer st.Close()
	rows, err := dirstatus.List(ctx, st, dirstatus.Filter{Team: *team, State: *state, Type: *typ, Problems: *problems}, now())
	if err != nil {
		fmt.Fprintf(stderr, "roster status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rows); err != nil {
			fmt.Fprintf(stderr, "roster status: %v\n", err)
			return 1
		}
		return 0
	}
	printStatus(stdout, rows, now())
	return 0
}

// printStatus writes the rows as an aligned table.
func printStatus(w io.Writer, rows []dirstatus.Row, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEAM\tDIRECTORY\tTYPE\tSTATE\tLAST SYNC\tPENDING\tLAG\tBACKOFF\tLAST ERROR")
	for _, r := range rows {
		team := r.TeamID
		if r.TeamName != "" && r.TeamName != r.TeamID {
			team = r.TeamName + " (" + r.TeamID + ")"
		}
		lastSync := "never"
		if r.LastSyncAt != nil {
			lastSync = age(now.Sub(*r.LastSyncAt)) + " ago"
		}
		lag := "-"
		if r.LagSeconds != nil {
			lag = age(time.Duration(*r.LagSeconds * float64(time.Second)))
		}
		backoff := "-"
		switch {
		case r.BackingOff && r.NextPollAt != nil:
			backoff = fmt.Sprintf("%d failed, next %s", r.ConsecutiveFailures, r.NextPollAt.UTC().Format(time.RFC3339))
		case r.BackingOff:
			backoff = fmt.Sprintf("%d failed", r.ConsecutiveFailures)
		}
		lastErr := strings.Join(strings.Fields(r.LastError), " ")
		if lastErr == "" {
			lastErr = "-"
		} else if r := []rune(lastErr); len(r) > 80 {
			lastErr = string(r[:77]) + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", team, r.DirectoryID, r.Type, r.State, lastSync, r.Pending, lag, backoff, lastErr)
	}
	tw.Flush()
}

// age is a duration rounded for reading: 45s, 12m, 3h5m, 2d4h.
func age(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
