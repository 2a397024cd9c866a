// Package app wires roster together: store, queue, reconciler, pollers,
// admin API, SCIM endpoint, web page and metrics, for the roles a process
// takes (api, worker, scheduler, or all of them).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roster-dev/roster/api"
	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/connectors/scim"
	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/metrics"
	"github.com/roster-dev/roster/queue"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/poll"
	"github.com/roster-dev/roster/sync/reconcile"
	"github.com/roster-dev/roster/web"
)

// App is one roster process.
type App struct {
	Cfg        config.Config
	Log        *slog.Logger
	Store      *store.Store
	Queue      *queue.Queue
	Metrics    *metrics.Metrics
	Reconciler *reconcile.Reconciler
	Poller     *poll.Poller
	API        *api.Server
	SCIM       *scim.Server
	// Web is the admin page (api role only).
	Web *web.Handler
	// GeneratedAdminToken is set when this start generated the admin token.
	GeneratedAdminToken string

	roles     map[string]bool
	listener  net.Listener
	hooks     *deliverer
	dirGauges *metrics.DirectoryCollector
	schedWake waker // SchedulesChanged → the leading scheduler's re-read
}

// New opens everything the configured roles need. Close releases it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	a := &App{Cfg: cfg, Log: log, roles: cfg.Roles(), Metrics: metrics.New()}
	var err error
	if a.Store, err = store.Open(ctx, cfg.DatabaseURL, cfg.DataDir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	qcfg := queue.Config{
		RedisURL: cfg.RedisURL, Namespace: cfg.Queue.Namespace, Concurrency: cfg.Queue.Concurrency,
		PollConcurrency: cfg.Queue.PollConcurrency, DeliverConcurrency: cfg.Webhooks.Concurrency,
		Logger: log.With("component", "queue"),
		// A crashed worker frees its directories within 10 s.
		RunTTL: 10 * time.Second,
	}
	if a.Queue, err = queue.Open(ctx, qcfg); err != nil {
		a.Store.Close()
		return nil, fmt.Errorf("open queue: %w", err)
	}
	a.Metrics.Registry.MustRegister(a.Queue.Collectors()...)
	a.dirGauges = metrics.NewDirectoryCollector(a.Store, metrics.DirectoryOptions{
		Interval: cfg.Metrics.RefreshInterval.Duration, PerDirectory: cfg.Metrics.PerDirectory, Log: log.With("component", "metrics"),
	})
	a.Metrics.Registry.MustRegister(a.dirGauges)
	a.Metrics.Registry.MustRegister(metrics.NewWebhookCollector(a.Store, log))
	a.hooks = newDeliverer(a)
	a.Store.OnEventsCommitted(a.hooks.eventsCommitted)
	a.Reconciler = &reconcile.Reconciler{Store: a.Store, Metrics: a.Metrics, Log: log.With("component", "reconcile")}
	a.setupFaults()
	a.startPprof()
	a.Poller = &poll.Poller{
		Store: a.Store, Metrics: a.Metrics, Log: log.With("component", "poll"),
		Types: ConnectorTypes(), Trigger: a.Queue.TriggerReconcile,
	}
	a.API = &api.Server{
		Store: a.Store, Queue: a.Queue, Metrics: a.Metrics, Log: log.With("component", "api"),
		PublicURL: cfg.PublicURL, Types: DirectoryTypes(log.With("component", "connectors")), Preview: a.Poller,
		Webhooks: api.Webhooks{AllowPrivateNetworks: cfg.Webhooks.AllowPrivateNetworks, Trigger: a.Queue.TriggerDeliver},
		Streams:  api.Streams{Hub: api.NewHub(), Poll: streamPoll(cfg, a.Store.Engine())},
	}
	a.Store.OnEventsCommitted(a.API.Streams.Hub.Notify)
	a.SCIM = scim.NewServer(scim.Options{
		Store: a.Store, Trigger: a.Queue.TriggerReconcile, Metrics: a.Metrics, Log: log.With("component", "scim"),
		PublicURL: cfg.PublicURL, MaxBodyBytes: cfg.SCIM.MaxBodyBytes, BulkMaxOperations: cfg.SCIM.BulkMaxOperations,
		RateLimit: cfg.SCIM.RateLimit, Burst: cfg.SCIM.Burst,
	})
	a.API.Changed = func() {
		a.SCIM.Invalidate()
		a.SchedulesChanged()
	}
	if err := a.setupAdminToken(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if a.roles[config.RoleAPI] {
		if err := a.setupWeb(); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// setupAdminToken stores the configured admin token's hash, or generates a
// token on first start.
func (a *App) setupAdminToken(ctx context.Context) error {
	if a.Cfg.AdminToken != "" {
		return a.Store.AddAdminToken(ctx, secret.Hash(a.Cfg.AdminToken), "configured")
	}
	hashes, err := a.Store.AdminTokenHashes(ctx)
	if err != nil {
		return fmt.Errorf("read admin tokens: %w", err)
	}
	if len(hashes) > 0 {
		return nil
	}
	tok := secret.NewToken("rst_admin_")
	if err := a.Store.AddAdminToken(ctx, secret.Hash(tok), "generated"); err != nil {
		return fmt.Errorf("store admin token: %w", err)
	}
	// Only the hash is kept; this file records that the token exists and
	// when it was made, so an operator knows to look for the first log.
	note := fmt.Sprintf("An admin token was generated on %s and printed once on standard output.\nOnly its SHA-256 is stored: %s\nTo replace it, start roster with --admin-token (ROSTER_ADMIN_TOKEN).\n",
		time.Now().UTC().Format(time.RFC3339), secret.Hash(tok))
	if a.Store.Engine() == store.SQLite || a.Cfg.DataDir != "" {
		_ = os.MkdirAll(a.Cfg.DataDir, 0o700)
		_ = os.WriteFile(filepath.Join(a.Cfg.DataDir, "admin-token.txt"), []byte(note), 0o600)
	}
	a.GeneratedAdminToken = tok
	return nil
}

// setupWeb builds the admin page on the admin API.
func (a *App) setupWeb() error {
	var err error
	a.Web, err = web.New(web.Options{
		Backend: webBackend{api: a.API, store: a.Store}, Sessions: a.Store,
		PublicURL: a.Cfg.PublicURL, Log: a.Log.With("component", "web"),
	})
	if err != nil {
		return fmt.Errorf("web page: %w", err)
	}
	return nil
}

// Close releases the store and the queue.
func (a *App) Close() {
	if a.Queue != nil {
		a.Queue.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
}

// Listen opens the HTTP listener (so callers can learn the address before
// Run).
func (a *App) Listen() (net.Addr, error) {
	l, err := net.Listen("tcp", a.Cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a.Cfg.Listen, err)
	}
	a.listener = l
	return l.Addr(), nil
}

// Handler is the HTTP surface of this process's roles.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics.Registry, promhttp.HandlerOpts{Registry: a.Metrics.Registry}))
	if a.roles[config.RoleAPI] {
		mux.Handle("/api/", a.API.Handler())
		mux.Handle("/scim/", a.SCIM)
		mux.Handle("/", a.Web)
	}
	return mux
}

func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if err := a.Store.Ping(ctx); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if err := a.Queue.Ping(ctx); err != nil {
		problems = append(problems, "redis: "+err.Error())
	}
	w.Header().Set("Content-Type", "text/plain")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, strings.Join(problems, "\n")+"\n")
		return
	}
	io.WriteString(w, "ready\n")
}

// Run serves until ctx is done, then shuts down gracefully: the HTTP server
// stops taking requests, running jobs finish or go back to the queue.
func (a *App) Run(ctx context.Context) error {
	if a.listener == nil {
		if _, err := a.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The directory gauges are read from the store in the background; a
	// scrape serves the last reading.
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.dirGauges.Run(runCtx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.hooks.run(runCtx)
	}()
	if a.roles[config.RoleWorker] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Queue.RunWorker(runCtx, a.handlers()); err != nil && runCtx.Err() == nil {
				errs <- fmt.Errorf("worker: %w", err)
			}
		}()
	}
	if a.roles[config.RoleScheduler] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Queue.Lead(runCtx, "scheduler", a.schedule); err != nil && runCtx.Err() == nil {
				errs <- fmt.Errorf("scheduler: %w", err)
			}
		}()
	}
	if a.roles[config.RoleAPI] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.SCIM.Run(runCtx)
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	a.Log.Info("shutting down")
	shutCtx, c2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer c2()
	// Event streams never end on their own; Shutdown would wait for them.
	a.API.Streams.Close()
	_ = srv.Shutdown(shutCtx)
	cancel()
	wg.Wait()
	return runErr
}

func (a *App) handlers() queue.Handlers {
	return queue.Handlers{
		Reconcile: func(ctx context.Context, dirID string) error {
			defer a.runLog("reconcile", dirID)()
			res, err := a.Reconciler.Reconcile(ctx, dirID)
			reportReconcile(ctx, res)
			if errors.Is(err, store.ErrNotFound) {
				return nil // the directory is gone: nothing to do
			}
			return err
		},
		Poll: func(ctx context.Context, dirID string) error {
			defer a.runLog("poll", dirID)()
			// A failed poll is recorded on the directory (state error,
			// last_error) and retried by its schedule, not by the queue:
			// queue retries would only back off behind the schedule.
			res, err := a.Poller.Run(ctx, dirID)
			reportPoll(ctx, res)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, poll.ErrNotPolled) {
				queue.ReportFailed(ctx, err)
			}
			return nil
		},
		Deliver: func(ctx context.Context, endpointID string) (time.Time, error) {
			defer a.runLog("deliver", endpointID)()
			return a.hooks.deliver(ctx, endpointID)
		},
	}
}
