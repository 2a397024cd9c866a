// Package config loads roster's configuration: a strict YAML file, then
// ROSTER_* environment variables, then flags (the caller applies those), and
// validates the result, reporting every problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Roles a process can take.
const (
	RoleAll       = "all"
	RoleAPI       = "api"
	RoleWorker    = "worker"
	RoleScheduler = "scheduler"
)

// Config is roster's configuration. YAML keys are the snake_case names below.
type Config struct {
	Listen      string `yaml:"listen"`
	DataDir     string `yaml:"data_dir"`
	DatabaseURL string `yaml:"database_url"`
	RedisURL    string `yaml:"redis_url"`
	AdminToken  string `yaml:"admin_token"`
	PublicURL   string `yaml:"public_url"`
	// Role is all (default: everything in one process), api, worker or
	// scheduler; several may be joined with commas.
	Role      string `yaml:"role"`
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`

	SCIM      SCIM      `yaml:"scim"`
	Reconcile Reconcile `yaml:"reconcile"`
	Queue     Queue     `yaml:"queue"`
	Webhooks  Webhooks  `yaml:"webhooks"`
	Metrics   Metrics   `yaml:"metrics"`

	// EnvErrors are environment variables LoadEnv could not read;
	// Validate reports them.
	EnvErrors []string `yaml:"-"`
}

// Webhooks tunes webhook delivery.
type Webhooks struct {
	// AllowPrivateNetworks lets endpoints resolve to loopback, private,
	// link-local and CGNAT addresses (cloud metadata stays refused). Env
	// ROSTER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true.
	AllowPrivateNetworks bool `yaml:"allow_private_networks"`
	// DeliveryLogRetention is how long delivery attempts are kept.
	DeliveryLogRetention Duration `yaml:"delivery_log_retention"`
	// RetryInitial is the delay after an event's first failed attempt; it
	// doubles up to 1 h, for 3 days. Tests shorten it.
	RetryInitial Duration `yaml:"retry_initial"`
	// Concurrency is how many endpoints one worker process delivers to at
	// once (one attempt in flight per endpoint).
	Concurrency int `yaml:"concurrency"`
}

// Metrics tunes the Prometheus metrics.
type Metrics struct {
	// RefreshInterval is how often the directory gauges are read from the
	// store; a scrape serves the last reading.
	RefreshInterval Duration `yaml:"refresh_interval"`
	// PerDirectory adds series labelled by directory (six per directory)
	// to the aggregates by type and state. Off by default: at thousands of
	// directories they dominate a scrape. Env
	// ROSTER_METRICS_PER_DIRECTORY=true.
	PerDirectory bool `yaml:"per_directory"`
}

// SCIM tunes the SCIM endpoint.
type SCIM struct {
	// RateLimit is the sustained requests per second allowed per
	// directory; Burst the bucket size. 0 disables the limit.
	RateLimit float64 `yaml:"rate_limit"`
	Burst     int     `yaml:"burst"`
	// MaxBodyBytes caps a request body (and advertises Bulk maxPayloadSize).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// BulkMaxOperations caps a Bulk request.
	BulkMaxOperations int `yaml:"bulk_max_operations"`
	// RequestLogRetention is how long the SCIM request log is kept.
	RequestLogRetention Duration `yaml:"request_log_retention"`
}

// Reconcile tunes the reconciler's safety nets.
type Reconcile struct {
	// FullEvery is how often every directory is reconciled in full.
	FullEvery Duration `yaml:"full_every"`
	// SweepEvery is how often the scheduler looks for changes whose
	// trigger was lost and triggers them again.
	SweepEvery Duration `yaml:"sweep_every"`
}

// Queue tunes the work queue.
type Queue struct {
	Concurrency     int    `yaml:"concurrency"`
	PollConcurrency int    `yaml:"poll_concurrency"`
	Namespace       string `yaml:"namespace"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "30s", "5m", "1h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s, 5m or 1h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Listen:    "127.0.0.1:8080",
		DataDir:   "./data",
		Role:      RoleAll,
		LogLevel:  "info",
		LogFormat: "text",
		SCIM: SCIM{
			RateLimit: 2000, Burst: 4000, MaxBodyBytes: 4 << 20, BulkMaxOperations: 1000,
			RequestLogRetention: Duration{7 * 24 * time.Hour},
		},
		Reconcile: Reconcile{FullEvery: Duration{time.Hour}, SweepEvery: Duration{5 * time.Second}},
		Queue:     Queue{Concurrency: 8, PollConcurrency: 4, Namespace: "roster"},
		Webhooks: Webhooks{
			DeliveryLogRetention: Duration{7 * 24 * time.Hour}, RetryInitial: Duration{time.Second}, Concurrency: 16,
		},
		Metrics: Metrics{RefreshInterval: Duration{10 * time.Second}},
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadFile reads a YAML file over c. Unknown keys are errors; ${VAR}
// references are replaced by the environment's values.
func (c *Config) LoadFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var missing []string
	lines := bytes.Split(raw, []byte("\n"))
	for i, line := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			continue // comments may mention ${VAR} freely
		}
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			name := string(envRef.FindSubmatch(m)[1])
			v, ok := os.LookupEnv(name)
			if !ok {
				missing = append(missing, name)
			}
			return []byte(v)
		})
	}
	expanded := bytes.Join(lines, []byte("\n"))
	if len(missing) > 0 {
		return fmt.Errorf("config %s: environment variables not set: %s", path, strings.Join(missing, ", "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Env lists the environment variables roster reads and where they go.
func (c *Config) Env() map[string]*string {
	return map[string]*string{
		"ROSTER_LISTEN":       &c.Listen,
		"ROSTER_DATA_DIR":     &c.DataDir,
		"ROSTER_DATABASE_URL": &c.DatabaseURL,
		"ROSTER_REDIS_URL":    &c.RedisURL,
		"ROSTER_ADMIN_TOKEN":  &c.AdminToken,
		"ROSTER_PUBLIC_URL":   &c.PublicURL,
		"ROSTER_ROLE":         &c.Role,
		"ROSTER_LOG_LEVEL":    &c.LogLevel,
		"ROSTER_LOG_FORMAT":   &c.LogFormat,
	}
}

// boolEnv are the environment variables that set a switch.
func (c *Config) boolEnv() map[string]*bool {
	return map[string]*bool{
		"ROSTER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": &c.Webhooks.AllowPrivateNetworks,
		"ROSTER_METRICS_PER_DIRECTORY":           &c.Metrics.PerDirectory,
	}
}

// LoadEnv applies ROSTER_* variables that are set. A switch that is not
// true or false is kept in EnvErrors for Validate.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) {
	for name, dst := range c.Env() {
		if v, ok := lookup(name); ok {
			*dst = v
		}
	}
	for name, dst := range c.boolEnv() {
		v, ok := lookup(name)
		if !ok {
			continue
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			c.EnvErrors = append(c.EnvErrors, fmt.Sprintf("%s=%q: want true or false", name, v))
			continue
		}
		*dst = b
	}
}

// Roles returns the set of roles this process takes.
func (c *Config) Roles() map[string]bool {
	out := map[string]bool{}
	for _, r := range strings.Split(c.Role, ",") {
		r = strings.TrimSpace(r)
		if r == RoleAll {
			out[RoleAPI], out[RoleWorker], out[RoleScheduler] = true, true, true
			continue
		}
		out[r] = true
	}
	return out
}

// Validate reports every problem with the configuration, each with what to
// do about it.
func (c *Config) Validate() error {
	type check struct {
		bad bool
		msg string
	}
	_, _, listenErr := net.SplitHostPort(c.Listen)
	roleOK := true
	for r := range c.Roles() {
		if r != RoleAPI && r != RoleWorker && r != RoleScheduler {
			roleOK = false
		}
	}
	embeddedRedis := c.RedisURL == ""
	roles := c.Roles()
	checks := []check{
		{listenErr != nil, fmt.Sprintf("listen %q: give host:port, e.g. 127.0.0.1:8080 or :8080", c.Listen)},
		{c.DataDir == "", "data_dir is empty: give a folder roster may write to (default ./data)"},
		{c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.HasPrefix(c.DatabaseURL, "sqlite:"),
			"database_url must be empty (SQLite in the data dir), sqlite:PATH, or a postgres:// URL"},
		{c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") && !strings.HasPrefix(c.RedisURL, "redis-sentinel://"),
			"redis_url must be empty (embedded Redis) or a redis://, rediss:// or redis-sentinel:// URL"},
		{!roleOK, fmt.Sprintf("role %q: use all, api, worker or scheduler (comma-separated for several)", c.Role)},
		{embeddedRedis && !(roles[RoleAPI] && roles[RoleWorker] && roles[RoleScheduler]),
			"the embedded Redis lives in one process: with --role other than all, give --redis-url so processes share a queue"},
		{c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://"),
			fmt.Sprintf("public_url %q must start with http:// or https://", c.PublicURL)},
		{c.LogLevel != "debug" && c.LogLevel != "info" && c.LogLevel != "warn" && c.LogLevel != "error", "log_level must be debug, info, warn or error"},
		{c.LogFormat != "text" && c.LogFormat != "json", "log_format must be text or json"},
		{c.SCIM.RateLimit < 0, "scim.rate_limit must be 0 (off) or a positive number of requests per second"},
		{c.SCIM.MaxBodyBytes < 1024, "scim.max_body_bytes must be at least 1024"},
		{c.SCIM.BulkMaxOperations < 1, "scim.bulk_max_operations must be at least 1"},
		{c.Reconcile.FullEvery.Duration < time.Minute, "reconcile.full_every must be at least 1m"},
		{c.Reconcile.SweepEvery.Duration < 100*time.Millisecond, "reconcile.sweep_every must be at least 100ms"},
		{c.AdminToken != "" && len(c.AdminToken) < 16, "admin_token must be at least 16 characters (or empty to generate one)"},
		{c.Webhooks.DeliveryLogRetention.Duration < time.Minute, "webhooks.delivery_log_retention must be at least 1m"},
		{c.Webhooks.RetryInitial.Duration < 10*time.Millisecond || c.Webhooks.RetryInitial.Duration > time.Hour, "webhooks.retry_initial must be between 10ms and 1h"},
		{c.Webhooks.Concurrency < 1, "webhooks.concurrency must be at least 1"},
		{c.Metrics.RefreshInterval.Duration < 10*time.Millisecond || c.Metrics.RefreshInterval.Duration > 10*time.Minute,
			"metrics.refresh_interval must be between 10ms and 10m (the directory gauges are at most that old)"},
	}
	var msgs []string
	msgs = append(msgs, c.EnvErrors...)
	for _, ch := range checks {
		if ch.bad {
			msgs = append(msgs, ch.msg)
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("invalid configuration:\n  - %s", strings.Join(msgs, "\n  - "))
	}
	return nil
}
