// Package connectors is the contract between roster's core and the
// directories it polls (LDAP / Active Directory, Google Workspace, Microsoft
// Graph, Okta). Each source lives in a package of its own under connectors/
// and imports only this package: it knows nothing of the poller, the
// reconciler or the store. The core, in turn, knows a source only through
// the Type it registers.
//
// The core asks a source for the whole directory (Source) and, where the
// source can say what changed since a cursor, for only that (DeltaSource).
// Optional abilities are small interfaces found by type assertion (Closer,
// Checker), as database/sql/driver and dex's connector package do.
package connectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// A Source is a directory that roster polls. It lists the whole directory;
// sources that can also list only what changed implement DeltaSource.
//
// A Source must never return a partial listing as if it were whole: if any
// page, range or connection fails, it returns an error and the poll changes
// nothing.
type Source interface {
	// Full lists every user and group the directory holds now. The returned
	// cursor, when not nil, is where the next incremental poll starts.
	Full(ctx context.Context) (*Snapshot, json.RawMessage, error)
}

// DeltaSource is a Source that can list what changed since a cursor.
type DeltaSource interface {
	Source
	// Changes lists what changed since cursor. It returns ErrResync when the
	// cursor cannot be used any more (expired cookie or delta link, USN
	// rollback, another server); the poller then runs Full.
	Changes(ctx context.Context, cursor json.RawMessage) (*Delta, json.RawMessage, error)
}

// Closer is implemented by sources holding connections.
type Closer interface {
	Close() error
}

// Checker is implemented by sources that can test their connection and
// permissions with a cheap call. The error it returns is shown to the admin
// who created or changed the directory, so it names the fix ("grant
// GroupMember.Read.All").
type Checker interface {
	Check(ctx context.Context) error
}

// Snapshot is a whole directory as a source lists it.
type Snapshot struct {
	Users  []User
	Groups []Group
	// Skipped are entries the source read but could not use (no email, no
	// id), with the reason; they are reported, never treated as removals of
	// anything else.
	Skipped []Skipped
}

// Delta is what changed in a directory since a cursor.
type Delta struct {
	// Upserted users and groups are given whole (all attributes, and for a
	// group its complete direct member list).
	Users  []User
	Groups []Group
	// DeletedUsers and DeletedGroups are external ids that no longer exist
	// (or no longer belong to the synced scope).
	DeletedUsers  []string
	DeletedGroups []string
	// Present, when not nil, is the complete set of external ids (users and
	// groups) that still exist; anything else the mirror holds for this
	// directory is deleted (RFC 4533 present phase, AD periodic listings).
	Present map[string]struct{}
	Skipped []Skipped
}

// User is one person as a polled directory describes them.
type User struct {
	// ExternalID is the source's stable id (objectGUID, entryUUID, Google id,
	// Graph id, Okta id). A rename or move keeps it.
	ExternalID  string
	UserName    string
	Email       string // lower-cased
	DisplayName string
	GivenName   string
	FamilyName  string
	// Active is false for disabled, suspended or deprovisioned accounts;
	// they leave the roster.
	Active bool
	// Attrs holds extra source attributes worth keeping (DN, department).
	Attrs map[string]any
}

// Group is one group as a polled directory describes it.
type Group struct {
	ExternalID string
	Name       string
	// Members are the external ids of the group's direct members, users or
	// groups. Members the source cannot resolve to an id it listed are
	// dropped by the poller.
	Members []string
	Attrs   map[string]any
}

// Skipped is an entry a source could not use.
type Skipped struct {
	ID     string // DN or source id
	Reason string
}

// ErrResync tells the poller that an incremental cursor is no longer valid
// and a full listing is needed.
var ErrResync = errors.New("incremental cursor no longer valid; full resync needed")

// Config is one polled source's settings, decoded from the JSON the admin
// API stores for the directory. Implementations are pointers to structs
// that embed PollSettings, so the settings every source shares keep one
// shape and one set of defaults.
type Config interface {
	// Validate reports every problem at once, each saying what to do.
	Validate() error
	// Polling returns the settings every polled source shares.
	Polling() PollSettings
	// Redacted returns the settings with every secret replaced, fit for API
	// answers, events and logs.
	Redacted() any
	// Open makes the source. It may connect; the caller closes the source
	// when it implements Closer.
	Open(ctx context.Context, log *slog.Logger) (Source, error)
}

// Type registers one kind of polled directory with the core: the core
// imports no connector, only a table of these built in app.
type Type struct {
	// NewConfig returns an empty Config to decode stored settings into.
	NewConfig func() Config
}

// Parse reads settings an admin sent to create or change a directory:
// unknown fields are errors (a typo must not silently drop a setting), and
// the result is validated.
func (t Type) Parse(raw json.RawMessage) (Config, error) {
	c := t.NewConfig()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Merge applies a change to stored settings: the fields patch gives
// replace the stored ones (a nested object merges field by field, a list is
// replaced whole), fields it leaves out are kept, secrets among them. Unknown
// fields are errors, and the result is validated.
func (t Type) Merge(stored, patch json.RawMessage) (Config, error) {
	c, err := t.Load(stored)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Load reads settings roster stored for a directory. They were validated
// when stored; fields this version does not know are ignored, so settings
// written by a newer version still poll.
func (t Type) Load(stored json.RawMessage) (Config, error) {
	c := t.NewConfig()
	if len(stored) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(stored, c); err != nil {
		return nil, fmt.Errorf("stored settings: %w", err)
	}
	return c, nil
}

// ConfigError lists every problem a source's Validate found, each saying
// what to do, so an admin fixes them in one round.
type ConfigError struct {
	// Source names the settings in the message ("ldap config").
	Source   string
	Problems []error
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return e.Source + ": " + strings.Join(parts, "; ")
}

// Unwrap gives the individual problems to errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.Problems }
