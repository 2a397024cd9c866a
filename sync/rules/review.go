package rules

import "time"

// Events both deletion guards (a poll's, and SCIM's mass-unassign guard)
// append to the feed.
const (
	EventDirectoryHeld     = "directory.needs_review"
	EventDirectoryApproved = "directory.approved"
)

// Review is what a deletion guard held back, kept on the directory until an
// admin approves it. Both guards write the same shape, so the admin API and
// the page read one thing.
type Review struct {
	HeldAt       time.Time `json:"held_at"`
	WouldRemove  int       `json:"would_remove"`
	ActiveBefore int       `json:"active_before"`
	MaxRemovals  int       `json:"max_removals"`
	MaxFraction  float64   `json:"max_fraction"`
	Sample       []string  `json:"sample"` // some of the users who would leave
	// Approved lets the next run apply the held removals despite the guard.
	Approved bool `json:"approved,omitempty"`
}
