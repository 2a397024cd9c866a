// Command rosterload drives a running roster's SCIM endpoint over HTTP and
// reports throughput, latency percentiles and push→roster lag.
//
//	rosterload -url http://127.0.0.1:8080 -admin-token T -scenario creates
//	rosterload -spawn /tmp/roster -scim-rate-limit 0 -scenario filters -seed 10000
//	rosterload -spawn /tmp/roster -scenario lag -rate 100 -d 30s
//
// Scenarios:
//
//	creates          POST /Users with unique userNames
//	filters          GET /Users?filter=userName eq "…" of random seeded users
//	member-adds      PATCH one group, adding one distinct seeded user per request
//	big-group-patch  one-member PATCH add/remove on groups of -sizes members
//	lag              open-loop writes at -rate; time until each shows in the
//	                 team's event feed (member.added or membership.added)
//
// Each run makes its own team and SCIM directory through the admin API.
// Every non-2xx answer, transport error and wrong 2xx answer is counted and
// reported; latencies include failed requests.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	url, adminToken        string
	httpClient             string
	scenario               string
	conc                   int
	dur, warmup            time.Duration
	n                      int
	seed, seedConc         int
	sizes                  []int
	fillBatch              int
	rate                   float64
	lagWrite               string
	pollEvery, drain       time.Duration
	maxInflight            int
	json, quiet            bool
	out                    io.Writer
	team, directory, token string
	spawn                  spawnOptions
	keep                   bool
}

// Report is the -json output.
type Report struct {
	Scenario  string      `json:"scenario"`
	URL       string      `json:"url"`
	Spawned   string      `json:"spawned,omitempty"`
	Started   time.Time   `json:"started"`
	LoadStart string      `json:"load_avg_start"`
	LoadEnd   string      `json:"load_avg_end"`
	CPUs      int         `json:"cpus"`
	Phases    []Phase     `json:"phases,omitempty"`
	Lag       []LagResult `json:"lag,omitempty"`
	Error     string      `json:"error,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rosterload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var sizes string
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "roster's base URL")
	fs.StringVar(&c.adminToken, "admin-token", os.Getenv("ROSTER_ADMIN_TOKEN"), "admin API token (default $ROSTER_ADMIN_TOKEN)")
	fs.StringVar(&c.scenario, "scenario", "creates", "creates, filters, member-adds, big-group-patch or lag")
	fs.IntVar(&c.conc, "c", 8, "concurrent clients (closed loop)")
	fs.DurationVar(&c.dur, "d", 10*time.Second, "how long each measured phase runs")
	fs.IntVar(&c.n, "n", 0, "run each measured phase for this many requests instead of -d")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before each timed phase (with -d)")
	fs.IntVar(&c.seed, "seed", 0, "users to create first (filters: default 10000; member-adds: default enough for -n, else 100000)")
	fs.IntVar(&c.seedConc, "seed-c", 8, "concurrent clients while seeding users")
	fs.StringVar(&sizes, "sizes", "1000,50000", "big-group-patch: group sizes, comma-separated")
	fs.IntVar(&c.fillBatch, "fill-batch", 1000, "big-group-patch: members per PATCH when filling a group")
	fs.Float64Var(&c.rate, "rate", 100, "lag: writes per second (open loop)")
	fs.StringVar(&c.lagWrite, "lag-write", "create", "lag: create (POST /Users, matched by member.added) or patch (add a seeded user to a group, matched by membership.added)")
	fs.DurationVar(&c.pollEvery, "poll", 5*time.Millisecond, "lag: pause between event-feed polls that found nothing new")
	fs.DurationVar(&c.drain, "drain", 30*time.Second, "lag: how long to wait after the last write for writes not yet seen")
	fs.IntVar(&c.maxInflight, "max-inflight", 512, "lag: most writes outstanding at once")
	fs.StringVar(&c.httpClient, "http-client", "raw", "SCIM requests through: raw (a lean HTTP/1.1 keep-alive client, as wrk; leaves more of a small machine to roster) or go (net/http's client)")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON on stdout")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines on stderr")
	fs.StringVar(&c.team, "team", "", "use this team instead of creating one (with -directory and -scim-token)")
	fs.StringVar(&c.directory, "directory", "", "use this SCIM directory id")
	fs.StringVar(&c.token, "scim-token", "", "bearer token of -directory")
	fs.StringVar(&c.spawn.binary, "spawn", "", "start `roster` from this binary (serve, loopback port, temporary data dir) and stop it afterwards")
	fs.StringVar(&c.spawn.databaseURL, "database-url", "", "with -spawn: passed to roster serve")
	fs.StringVar(&c.spawn.redisURL, "redis-url", "", "with -spawn: passed to roster serve")
	fs.Float64Var(&c.spawn.rateLimit, "scim-rate-limit", -1, "with -spawn: SCIM requests/s per directory (0 = off; negative = roster's default)")
	spawnArgs := fs.String("spawn-args", "", "with -spawn: more arguments for roster serve, space-separated")
	fs.BoolVar(&c.keep, "keep", false, "with -spawn: keep the data folder and log")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rosterload [flags]\n\nDrives roster's SCIM endpoint over HTTP and reports throughput, latency and push→roster lag.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "rosterload: -sizes: %q is not a positive number\n", f)
			return 2
		}
		c.sizes = append(c.sizes, n)
	}
	if *spawnArgs != "" {
		c.spawn.extra = strings.Fields(*spawnArgs)
	}
	switch c.scenario {
	case "creates", "filters", "member-adds", "big-group-patch", "lag":
	default:
		fmt.Fprintf(stderr, "rosterload: unknown -scenario %q: use creates, filters, member-adds, big-group-patch or lag\n", c.scenario)
		return 2
	}
	if c.lagWrite != "create" && c.lagWrite != "patch" {
		fmt.Fprintf(stderr, "rosterload: -lag-write must be create or patch\n")
		return 2
	}
	if c.conc < 1 || c.seedConc < 1 || c.maxInflight < 1 || c.fillBatch < 1 {
		fmt.Fprintf(stderr, "rosterload: -c, -seed-c, -max-inflight and -fill-batch must be at least 1\n")
		return 2
	}
	if c.seed == 0 {
		switch {
		case c.scenario == "filters":
			c.seed = 10000
		case c.scenario == "member-adds" && c.n > 0:
			c.seed = c.n
		case c.scenario == "member-adds":
			c.seed = 100000
		}
	}
	c.out = stdout
	logf := func(format string, a ...any) {
		if !c.quiet {
			fmt.Fprintf(stderr, "rosterload: "+format+"\n", a...)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := &Report{Scenario: c.scenario, Started: time.Now().UTC(), LoadStart: loadAvg(), CPUs: runtime.NumCPU()}
	var srv *serverProc
	if c.spawn.binary != "" {
		var err error
		var url, tok string
		srv, url, tok, err = spawn(ctx, c.spawn)
		if err != nil {
			fmt.Fprintf(stderr, "rosterload: %v\n", err)
			return 1
		}
		defer func() {
			srv.stop(c.keep)
			if c.keep {
				logf("kept %s", srv.dataDir)
			}
		}()
		c.url, c.adminToken = url, tok
		rep.Spawned = strings.Join(append([]string{c.spawn.binary, "serve"}, spawnSummary(c.spawn)...), " ")
		logf("spawned roster (pid %d) at %s, log %s", srv.pid, url, srv.logPath)
	}
	rep.URL = c.url
	if c.adminToken == "" && c.token == "" {
		fmt.Fprintf(stderr, "rosterload: give -admin-token (or $ROSTER_ADMIN_TOKEN), or -spawn\n")
		return 2
	}
	cl := newClient(c.url, c.adminToken, max(c.conc, c.seedConc, c.maxInflight))
	cl.teamID, cl.dirID, cl.scimTok = c.team, c.directory, c.token
	switch c.httpClient {
	case "go":
	case "raw":
		p, err := newRawPool(c.url, max(c.conc, c.seedConc, c.maxInflight))
		if err != nil {
			fmt.Fprintf(stderr, "rosterload: %v\n", err)
			return 2
		}
		cl.raw = p
	default:
		fmt.Fprintf(stderr, "rosterload: -http-client must be raw or go\n")
		return 2
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	s := &scenario{c: cl, srv: srv, cfg: c, runID: hex.EncodeToString(id), log: logf, report: rep}
	err := cl.setup(ctx, "rosterload "+s.runID)
	if err == nil {
		logf("team %s, directory %s; load average %s", cl.teamID, cl.dirID, rep.LoadStart)
		switch c.scenario {
		case "creates":
			err = s.creates(ctx)
		case "filters":
			err = s.filters(ctx)
		case "member-adds":
			err = s.memberAdds(ctx)
		case "big-group-patch":
			err = s.bigGroupPatch(ctx)
		case "lag":
			err = s.lag(ctx)
		}
	}
	rep.LoadEnd = loadAvg()
	if err != nil {
		rep.Error = err.Error()
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "load average: start %s, end %s (%d CPUs)\n", rep.LoadStart, rep.LoadEnd, rep.CPUs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rosterload: %v\n", err)
		if srv != nil {
			fmt.Fprintf(stderr, "roster log tail:\n%s\n", tail(srv.logPath, 1500))
		}
		return 1
	}
	for _, p := range rep.Phases {
		if p.Errors > 0 {
			return 3 // numbers printed, but some requests failed
		}
	}
	for _, l := range rep.Lag {
		if l.Writes.Errors > 0 || l.Unseen > 0 {
			return 3
		}
	}
	return 0
}

func spawnSummary(o spawnOptions) []string {
	var out []string
	if o.databaseURL != "" {
		out = append(out, "--database-url", o.databaseURL)
	}
	if o.redisURL != "" {
		out = append(out, "--redis-url", o.redisURL)
	}
	if o.rateLimit >= 0 {
		out = append(out, fmt.Sprintf("--config <scim.rate_limit: %g>", o.rateLimit))
	}
	return append(out, o.extra...)
}
