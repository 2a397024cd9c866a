// Command roster keeps a team's roster in step with its identity provider.
//
//	roster serve [flags]
//	roster status [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/roster-dev/roster/app"
	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/internal/gctune"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `roster keeps a team's roster in step with its identity provider: SCIM 2.0
pushes and LDAP / Active Directory polls become members, groups and spend limits.

Usage:
  roster serve [flags]    run the service (embedded by default: SQLite and an
                          in-process Redis in --data-dir, nothing to install)
  roster status [flags]   list each directory with its state, last sync, pending
                          changes, lag, backoff and last error (read-only)
  roster version          print the version

Run 'roster serve --help' or 'roster status --help' for the flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "status":
		return status(args[1:], stdout, stderr, time.Now)
	case "version", "--version":
		fmt.Fprintln(stdout, "roster", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "roster: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("roster serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := config.Default()
	var (
		configPath  = fs.String("config", "", "YAML configuration file (flags win over ROSTER_* environment, environment over the file)")
		listen      = fs.String("listen", def.Listen, "address to serve HTTP on (ROSTER_LISTEN)")
		dataDir     = fs.String("data-dir", def.DataDir, "folder for the SQLite database and generated files (ROSTER_DATA_DIR)")
		databaseURL = fs.String("database-url", "", "empty for SQLite in the data folder, or postgres://user:pass@host/db (ROSTER_DATABASE_URL)")
		redisURL    = fs.String("redis-url", "", "empty for the embedded in-process Redis, or redis://host:6379/0, rediss://..., redis-sentinel://... (ROSTER_REDIS_URL)")
		adminToken  = fs.String("admin-token", "", "admin API bearer token; when empty one is generated on first start and printed once (ROSTER_ADMIN_TOKEN)")
		publicURL   = fs.String("public-url", "", "external base URL, used to build SCIM base URLs, e.g. https://roster.example.com (ROSTER_PUBLIC_URL)")
		role        = fs.String("role", def.Role, "what this process runs: all, api, worker or scheduler; comma-separate several (ROSTER_ROLE)")
		logLevel    = fs.String("log-level", def.LogLevel, "debug, info, warn or error (ROSTER_LOG_LEVEL)")
		logFormat   = fs.String("log-format", def.LogFormat, "text or json (ROSTER_LOG_FORMAT)")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: roster serve [flags]\n\nRuns roster. With no flags it is embedded: SQLite and an in-process Redis in ./data.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "roster serve: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	apply := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	apply("listen", &cfg.Listen, *listen)
	apply("data-dir", &cfg.DataDir, *dataDir)
	apply("database-url", &cfg.DatabaseURL, *databaseURL)
	apply("redis-url", &cfg.RedisURL, *redisURL)
	apply("admin-token", &cfg.AdminToken, *adminToken)
	apply("public-url", &cfg.PublicURL, *publicURL)
	apply("role", &cfg.Role, *role)
	apply("log-level", &cfg.LogLevel, *logLevel)
	apply("log-format", &cfg.LogFormat, *logFormat)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "roster: %v\n", err)
		return 2
	}

	log := newLogger(cfg, stderr)
	// At least 64 MiB between collections while the heap is small (see
	// internal/gctune); GOGC in the environment turns this off.
	defer gctune.Start(64 << 20).Stop()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer a.Close()
	addr, err := a.Listen()
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if a.GeneratedAdminToken != "" {
		fmt.Fprintf(stdout, "\nroster generated an admin token. It is shown only this once; keep it safe:\n\n    %s\n\nUse it as: Authorization: Bearer <token>\n\n", a.GeneratedAdminToken)
	}
	log.Info("roster serving", "addr", addr.String(), "roles", cfg.Role, "store", a.Store.Engine(), "redis", a.Queue.RedisAddr(), "version", version)
	if err := a.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
