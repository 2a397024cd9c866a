package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Defaults of the SCIM deletion guard, chosen so that ordinary churn (a few
// leavers a day, a team moved out at once) never trips it while an
// unassigned "Everyone" group or a mis-scoped provisioning job does. The
// price of a trip is that the held people keep their access until an admin
// approves, so the defaults lean towards applying.
const (
	// DefaultSCIMMaxRemovals is how many members may leave a SCIM
	// directory's roster within the window.
	DefaultSCIMMaxRemovals = 50
	// DefaultSCIMMaxFraction is the share of the directory's members that
	// may leave within the window.
	DefaultSCIMMaxFraction = 0.2
	// DefaultSCIMWindow is the window the removals are counted over.
	DefaultSCIMWindow = time.Hour
	// SCIMFractionFloor is how many removals within the window the
	// fraction alone never holds: in a team of twenty, four leavers in an
	// hour are a fifth of it and still ordinary.
	SCIMFractionFloor = 10
	// MaxSCIMWindow bounds the window: the removal log keeps one window.
	MaxSCIMWindow = 7 * 24 * time.Hour
)

// SCIMSettings are a SCIM directory's settings, as the admin API takes them
// under "scim".
type SCIMSettings struct {
	DeletionGuard SCIMDeletionGuard `json:"deletion_guard"`
}

// SCIMDeletionGuard holds back the removals an identity provider pushes
// when too many members would leave the roster within a window. It is off
// unless Enabled; unset limits take the defaults.
type SCIMDeletionGuard struct {
	Enabled bool `json:"enabled"`
	// MaxRemovals is how many members may leave within Window; 0 holds
	// every removal. Unset means DefaultSCIMMaxRemovals.
	MaxRemovals *int `json:"max_removals,omitempty"`
	// MaxFraction is the share of the members that may leave within
	// Window, in (0, 1]. Unset means DefaultSCIMMaxFraction.
	MaxFraction *float64 `json:"max_fraction,omitempty"`
	// Window is how far back removals count. Unset means DefaultSCIMWindow.
	Window Duration `json:"window,omitempty"`
}

// Limits returns the guard's values with defaults applied.
func (g SCIMDeletionGuard) Limits() (maxRemovals int, maxFraction float64, window time.Duration) {
	maxRemovals, maxFraction, window = DefaultSCIMMaxRemovals, DefaultSCIMMaxFraction, DefaultSCIMWindow
	if g.MaxRemovals != nil {
		maxRemovals = *g.MaxRemovals
	}
	if g.MaxFraction != nil {
		maxFraction = *g.MaxFraction
	}
	if g.Window > 0 {
		window = g.Window.D()
	}
	return maxRemovals, maxFraction, window
}

// Validate reports every problem with the settings at once, each saying
// what to write instead.
func (s SCIMSettings) Validate() error {
	g := s.DeletionGuard
	var errs []error
	if n := g.MaxRemovals; n != nil && *n < 0 {
		errs = append(errs, fmt.Errorf("deletion_guard.max_removals: %d is negative; give 0 (every removal waits for approval) or more", *n))
	}
	if f := g.MaxFraction; f != nil && (*f <= 0 || *f > 1) {
		errs = append(errs, fmt.Errorf("deletion_guard.max_fraction: %v is outside (0, 1]; e.g. 0.2 holds removals of more than a fifth of the members", *f))
	}
	switch {
	case g.Window < 0:
		errs = append(errs, errors.New("deletion_guard.window: negative; write it like 1h"))
	case g.Window > 0 && g.Window.D() < time.Minute:
		errs = append(errs, fmt.Errorf("deletion_guard.window: %s is shorter than a minute; an identity provider's mass unassign takes minutes, write it like 1h", g.Window.D()))
	case g.Window.D() > MaxSCIMWindow:
		errs = append(errs, fmt.Errorf("deletion_guard.window: %s is longer than %s; write it like 1h", g.Window.D(), MaxSCIMWindow))
	}
	return errors.Join(errs...)
}

// ParseSCIMSettings reads SCIM settings from the admin API strictly
// (unknown fields are errors) and validates them. Empty means the defaults,
// guard off.
func ParseSCIMSettings(raw json.RawMessage) (SCIMSettings, error) {
	return MergeSCIMSettings(nil, raw)
}

// MergeSCIMSettings applies a change to stored SCIM settings: fields the
// patch gives replace the stored ones, the others are kept.
func MergeSCIMSettings(stored, patch json.RawMessage) (SCIMSettings, error) {
	s := LoadSCIMSettings(stored)
	if len(bytes.TrimSpace(patch)) == 0 || string(bytes.TrimSpace(patch)) == "null" {
		return s, s.Validate()
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("invalid JSON: %w", err)
	}
	return s, s.Validate()
}

// LoadSCIMSettings reads the settings roster stored for a SCIM directory.
// They were validated when stored; unreadable settings leave the guard off.
func LoadSCIMSettings(stored json.RawMessage) SCIMSettings {
	var s SCIMSettings
	if len(stored) > 0 {
		_ = json.Unmarshal(stored, &s)
	}
	return s
}
