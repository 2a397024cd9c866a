package connectors

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Defaults of the settings every polled source shares. They live here and
// nowhere else.
const (
	// DefaultSchedule polls every five minutes: cheap for incremental
	// sources, and well inside what a directory admin expects for "sync".
	DefaultSchedule = "@every 5m"
	// DefaultMaxRemovals and DefaultMaxFraction hold back a poll that would
	// remove more than 500 members, or more than a fifth of them, the way
	// trusted sync engines guard exports.
	DefaultMaxRemovals = 500
	DefaultMaxFraction = 0.2
	// DefaultFullSyncEvery is how often an incremental source lists the
	// whole directory, to find deletions its deltas cannot show.
	DefaultFullSyncEvery = time.Hour
	// MinFullSyncEvery is the shortest full_sync_every accepted: a full
	// listing reads the whole directory.
	MinFullSyncEvery = time.Minute
)

// PollSettings are the settings every polled source shares. A source's
// Config embeds it, so in JSON and YAML its fields sit beside the source's
// own ("schedule", "deletion_guard", "full_sync_every").
type PollSettings struct {
	// Schedule is a cron spec ("*/5 * * * *") or a descriptor ("@every 30s").
	Schedule string `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	// DeletionGuard limits how much one poll may remove from the roster.
	DeletionGuard DeletionGuard `json:"deletion_guard,omitempty" yaml:"deletion_guard,omitempty"`
	// FullSyncEvery is how often an incremental source lists everything,
	// to find what its deltas cannot show. The poller owns the timing: once
	// the last full listing is older, it calls Full instead of Changes, so a
	// source never checks this itself.
	FullSyncEvery Duration `json:"full_sync_every,omitempty" yaml:"full_sync_every,omitempty"`
}

// DeletionGuard limits how much one poll may remove. Unset fields take the
// defaults; a poll that would remove more than either limit allows is held
// until an admin approves it.
type DeletionGuard struct {
	// MaxRemovals is how many members one poll may remove. 0 is a real
	// value, not "unset": every removal then waits for approval (the
	// strictest guard). Unset means DefaultMaxRemovals.
	MaxRemovals *int `json:"max_removals,omitempty" yaml:"max_removals,omitempty"`
	// MaxFraction is the share of the active members one poll may remove,
	// in (0, 1]. Unset means DefaultMaxFraction. A single removal is never
	// held by the fraction alone, so a directory of three people can lose
	// one.
	MaxFraction *float64 `json:"max_fraction,omitempty" yaml:"max_fraction,omitempty"`
}

// Limits returns the guard's values with defaults applied.
func (g DeletionGuard) Limits() (maxRemovals int, maxFraction float64) {
	maxRemovals, maxFraction = DefaultMaxRemovals, DefaultMaxFraction
	if g.MaxRemovals != nil {
		maxRemovals = *g.MaxRemovals
	}
	if g.MaxFraction != nil {
		maxFraction = *g.MaxFraction
	}
	return maxRemovals, maxFraction
}

// ScheduleSpec returns the schedule, or the default when none is set.
func (p PollSettings) ScheduleSpec() string {
	if s := strings.TrimSpace(p.Schedule); s != "" {
		return s
	}
	return DefaultSchedule
}

// FullSyncInterval returns how often to list everything, or the default.
func (p PollSettings) FullSyncInterval() time.Duration {
	if p.FullSyncEvery <= 0 {
		return DefaultFullSyncEvery
	}
	return p.FullSyncEvery.D()
}

// Problems lists what is wrong with the shared settings, each saying what to
// do; a source's Validate adds them to its own.
func (p PollSettings) Problems() []error {
	var errs []error
	if p.Schedule != "" {
		if _, err := cron.ParseStandard(p.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("schedule: %q is not a cron spec or descriptor (%v); write it like \"*/5 * * * *\" or \"@every 5m\"", p.Schedule, err))
		}
	}
	if n := p.DeletionGuard.MaxRemovals; n != nil && *n < 0 {
		errs = append(errs, fmt.Errorf("deletion_guard.max_removals: %d is negative; give 0 (every removal waits for approval) or more", *n))
	}
	if f := p.DeletionGuard.MaxFraction; f != nil && (*f <= 0 || *f > 1) {
		errs = append(errs, fmt.Errorf("deletion_guard.max_fraction: %v is outside (0, 1]; e.g. 0.2 holds a poll that would remove more than a fifth of the members", *f))
	}
	if p.FullSyncEvery < 0 {
		errs = append(errs, fmt.Errorf("full_sync_every: negative; write it like 1h"))
	} else if p.FullSyncEvery > 0 && p.FullSyncEvery.D() < MinFullSyncEvery {
		errs = append(errs, fmt.Errorf("full_sync_every: %s is shorter than a minute; a full listing reads the whole directory, write it like 1h", p.FullSyncEvery.D()))
	}
	return errs
}

// Duration is a time.Duration written as "30s", "5m" (or a number of
// seconds in JSON).
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes "30s".
func (d Duration) MarshalText() ([]byte, error) {
	if d == 0 {
		return []byte(""), nil
	}
	return []byte(time.Duration(d).String()), nil
}

// UnmarshalText reads "30s", or a bare number of seconds.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		*d = 0
		return nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: write it like 30s, 5m or 1h", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON accepts "30s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return d.UnmarshalText([]byte(s))
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"30s\" or a number of seconds")
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// MarshalJSON writes "30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	b, _ := d.MarshalText()
	return json.Marshal(string(b))
}
