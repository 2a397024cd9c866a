package poll

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/roster-dev/roster/connectors"
)

// previewSample is how many people of each kind a preview names.
const previewSample = 20

// Preview is what the next poll would change in the roster, applied
// nowhere.
type Preview struct {
	WouldAdd    int `json:"would_add"`    // people who would join the roster
	WouldRemove int `json:"would_remove"` // people who would leave it
	WouldUpdate int `json:"would_update"` // members whose profile would change
	// Groups counts group changes: created, deleted, renamed, and groups
	// whose direct members change.
	Groups PreviewGroups `json:"groups"`
	// Held says the deletion guard would hold the poll back for review.
	Held    bool          `json:"held"`
	Skipped int           `json:"skipped"`
	Sample  PreviewSample `json:"sample"`
	// Listing is how the preview read the source: always "full".
	Listing string `json:"listing"`
}

// PreviewGroups counts the group changes a preview found.
type PreviewGroups struct {
	Created        int `json:"created"`
	Deleted        int `json:"deleted"`
	Renamed        int `json:"renamed"`
	MembersChanged int `json:"members_changed"`
}

// PreviewSample names some of the people each count covers.
type PreviewSample struct {
	Add     []PreviewPerson      `json:"add"`
	Remove  []PreviewPerson      `json:"remove"`
	Update  []PreviewPerson      `json:"update"`
	Skipped []connectors.Skipped `json:"skipped"`
}

// PreviewPerson is one person in a preview's sample.
type PreviewPerson struct {
	ExternalID string `json:"external_id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
}

// Preview lists the whole source and compares it with the mirror, as a
// full poll would, but writes nothing: no mirror row, no cursor, no state.
// It always lists in full because consuming an incremental cursor (a System
// Log position, a sync cookie) would make the next real poll miss changes,
// and a full listing shows every difference, deletions included.
func (p *Poller) Preview(ctx context.Context, dirID string) (any, error) {
	dir, err := p.Store.GetDirectory(ctx, dirID)
	if err != nil {
		return nil, fmt.Errorf("preview %s: %w", dirID, err)
	}
	typ, ok := p.Types[dir.Type]
	if !ok {
		return nil, fmt.Errorf("preview %s (%s): %w", dirID, dir.Type, ErrNotPolled)
	}
	cfg, err := typ.Load(dir.Settings)
	if err != nil {
		return nil, err
	}
	src, err := cfg.Open(ctx, p.logger().With("directory", dirID, "type", dir.Type, "preview", true))
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if c, ok := src.(connectors.Closer); ok {
		defer c.Close()
	}
	snap, _, err := src.Full(ctx)
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("source returned no snapshot and no error")
	}
	l := listing{snap: snap}
	cur, err := p.loadMirror(ctx, dir.ID, l)
	if err != nil {
		return nil, fmt.Errorf("read mirror: %w", err)
	}
	pl := planPoll(dir.ID, cur, l)
	active, err := cur.active(len(pl.leaving))
	if err != nil {
		return nil, fmt.Errorf("count members: %w", err)
	}
	guard := guardOf(cfg.Polling())
	return previewOf(cur, pl, guard.Holds(len(pl.leaving), active)), nil
}

// previewOf turns a poll's plan into what joins, leaves and changes on the
// roster. Only active users are roster members: a new inactive user joins
// nobody, and an inactive one turned active joins.
func previewOf(cur *mirrorState, pl *pollPlan, held bool) *Preview {
	pv := &Preview{Held: held, Skipped: len(pl.skipped), Listing: "full",
		Sample: PreviewSample{Add: []PreviewPerson{}, Remove: []PreviewPerson{}, Update: []PreviewPerson{}, Skipped: []connectors.Skipped{}}}
	add := func(list *[]PreviewPerson, n *int, id, email, name string) {
		*n++
		if len(*list) < previewSample {
			*list = append(*list, PreviewPerson{ExternalID: id, Email: email, Name: name})
		}
	}
	for _, u := range pl.newUsers {
		if u.Active {
			add(&pv.Sample.Add, &pv.WouldAdd, u.ExternalID, u.Email, nameOf(u.DisplayName, u.GivenName, u.FamilyName, u.UserName))
		}
	}
	for _, u := range pl.changedUsers {
		old, existed := cur.users[u.ID]
		name := nameOf(u.DisplayName, u.GivenName, u.FamilyName, u.UserName)
		switch {
		case u.Active && (!existed || !old.Active):
			add(&pv.Sample.Add, &pv.WouldAdd, u.ExternalID, u.Email, name)
		case u.Active:
			add(&pv.Sample.Update, &pv.WouldUpdate, u.ExternalID, u.Email, name)
		}
	}
	for _, id := range pl.leaving {
		u := cur.users[id]
		add(&pv.Sample.Remove, &pv.WouldRemove, id, u.Email, nameOf(u.DisplayName, u.GivenName, u.FamilyName, u.UserName))
	}
	for _, g := range pl.putGroups {
		if g.existed {
			pv.Groups.Renamed++
		} else {
			pv.Groups.Created++
		}
	}
	pv.Groups.Deleted = len(pl.deleteGroups)
	pv.Groups.MembersChanged = len(pl.memberChanges)
	for i, s := range pl.skipped {
		if i == previewSample {
			break
		}
		pv.Sample.Skipped = append(pv.Sample.Skipped, s)
	}
	return pv
}

// nameOf is how a preview names a person: display name, else given and
// family name, else user name.
func nameOf(display, given, family, userName string) string {
	if display != "" {
		return display
	}
	if n := strings.TrimSpace(given + " " + family); n != "" {
		return n
	}
	return userName
}
