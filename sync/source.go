package sync

import (
	"context"
	"encoding/json"
	"errors"
)

// A Source is a directory that roster polls (LDAP, Active Directory, Google
// Workspace, Microsoft Graph, Okta). It lists the whole directory; sources that
// can also list only what changed implement DeltaSource.
//
// A Source must never return a partial listing as if it were whole: if any page,
// range or connection fails, it returns an error and the poll changes nothing.
type Source interface {
	// Full lists every user and group the directory holds now. The returned
	// cursor, when not nil, is where the next incremental poll starts.
	Full(ctx context.Context) (*Snapshot, json.RawMessage, error)
}

// DeltaSource is a Source that can list what changed since a cursor.
type DeltaSource interface {
	Source
	// Changes lists what changed since cursor. It returns ErrResync when the
	// cursor cannot be used any more (expired cookie, USN rollback, another
	// domain controller); the poller then runs Full.
	Changes(ctx context.Context, cursor json.RawMessage) (*Delta, json.RawMessage, error)
}

// Closer is implemented by sources holding connections.
type Closer interface {
	Close() error
}

// Snapshot is a whole directory as a source lists it.
type Snapshot struct {
	Users  []SourceUser
	Groups []SourceGroup
	// Skipped are entries the source read but could not use (no email, no id),
	// with the reason; they are reported, never treated as removals of
	// anything else.
	Skipped []Skipped
}

// Delta is what changed in a directory since a cursor.
type Delta struct {
	// Upserted users and groups are given whole (all attributes, and for a
	// group its complete direct member list).
	Users  []SourceUser
	Groups []SourceGroup
	// DeletedUsers and DeletedGroups are external ids that no longer exist.
	DeletedUsers  []string
	DeletedGroups []string
	// Present, when not nil, is the complete set of external ids (users and
	// groups) that still exist; anything else the mirror holds for this
	// directory is deleted (RFC 4533 present phase, AD periodic listings).
	Present map[string]struct{}
	Skipped []Skipped
}

// SourceUser is one person as a polled directory describes them.
type SourceUser struct {
	// ExternalID is the source's stable id (objectGUID, entryUUID, Google id,
	// Graph id, Okta id). A rename or move keeps it.
	ExternalID  string
	UserName    string
	Email       string // lower-cased
	DisplayName string
	GivenName   string
	FamilyName  string
	// Active is false for disabled accounts; they leave the roster.
	Active bool
	// Attrs holds extra source attributes worth keeping (DN, department).
	Attrs map[string]any
}

// SourceGroup is one group as a polled directory describes it.
type SourceGroup struct {
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

// ErrResync tells the poller that an incremental cursor is no longer valid and
// a full listing is needed.
var ErrResync = errors.New("incremental cursor no longer valid; full resync needed")
