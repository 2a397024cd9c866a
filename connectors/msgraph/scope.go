package msgraph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/roster-dev/roster/connectors"
)

// Scoping with group_ids.
//
// A full listing reads the whole tenant's users and groups (the same two
// delta rounds as without a scope, so the delta links cover everything)
// and keeps the scope: the groups in group_ids, every group nested in
// them, and the users who are direct members of any of those, that is the
// members of group_ids directly or through nesting. Only scope groups are
// listed. The cursor keeps the scope's group ids.
//
// An incremental poll reads the same rounds and then, in $batch requests:
// the complete members of every scope group that changed, and for every
// user who changed or came into or left a scope group, checkMemberGroups
// against group_ids, which Graph answers transitively. A user in scope is
// upserted, one out of it is deleted. When the scope's shape changes (a
// scope group is deleted, or a group joins or leaves a scope group), the
// poll lists everything and returns it with Delta.Present.

// closure returns the scope's groups and users from a full groups round.
func (s *Source) closure(gr *groupsRound) (groups, users map[string]bool, err error) {
	groups, users = map[string]bool{}, map[string]bool{}
	var missing []string
	var frontier []string
	for _, id := range s.groupIDs {
		if st := findGroup(gr, id); st == "" {
			missing = append(missing, id)
		} else {
			frontier = append(frontier, st)
			groups[st] = true
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("group_ids: %s not found in the tenant; remove them or give the Object ID of existing groups", strings.Join(missing, ", "))
	}
	for len(frontier) > 0 {
		var next []string
		for _, gid := range frontier {
			for m, kind := range gr.byID[gid].members {
				switch {
				case kind == "user":
					users[m] = true
				case kind == "group" && !groups[m]:
					if st := gr.byID[m]; st != nil && !st.removed {
						groups[m] = true
						next = append(next, m)
					}
				}
			}
		}
		frontier = next
	}
	return groups, users, nil
}

// findGroup finds a group id in a round, ignoring case (ids in settings
// may be written in capitals).
func findGroup(gr *groupsRound, id string) string {
	if st := gr.byID[id]; st != nil && !st.removed {
		return id
	}
	for gid, st := range gr.byID {
		if strings.EqualFold(gid, id) && !st.removed {
			return gid
		}
	}
	return ""
}

// changesScoped is an incremental poll limited to group_ids.
func (s *Source) changesScoped(ctx context.Context, ur *usersRound, gr *groupsRound, next *cursor) (*connectors.Delta, *cursor, error) {
	scope := map[string]bool{}
	for _, id := range next.Scope {
		scope[id] = true
	}
	var changed []string
	candidates := map[string]bool{}
	for _, gid := range gr.order {
		st := gr.byID[gid]
		if !scope[gid] {
			continue
		}
		if st.removed || st.groupChange {
			return s.fullAsDelta(ctx)
		}
		changed = append(changed, gid)
		for m, kind := range st.members {
			if kind == "user" {
				candidates[m] = true
			}
		}
		for m, kind := range st.gone {
			if kind == "user" {
				candidates[m] = true
			}
		}
	}
	d := &connectors.Delta{}
	for _, id := range ur.order {
		if ur.byID[id].Removed != nil {
			d.DeletedUsers = append(d.DeletedUsers, id)
			delete(candidates, id)
		} else {
			candidates[id] = true
		}
	}

	// One checkMemberGroups per user and 20 group ids; a user the round did
	// not describe is read too.
	var extra []*job
	users := sortedSet(candidates)
	for _, uid := range users {
		for i := 0; i < len(s.groupIDs); i += checkChunk {
			chunk := s.groupIDs[i:min(i+checkChunk, len(s.groupIDs))]
			extra = append(extra, &job{key: fmt.Sprintf("c:%s:%d", uid, i), method: http.MethodPost,
				url: "/users/" + url.PathEscape(uid) + "/checkMemberGroups", body: map[string]any{"groupIds": chunk}})
		}
		if ur.byID[uid] == nil {
			extra = append(extra, &job{key: "u:" + uid, method: http.MethodGet,
				url: "/users/" + url.PathEscape(uid) + "?" + url.Values{"$select": {userSelect}}.Encode()})
		}
	}
	groups, gone, res, err := s.rereadGroups(ctx, changed, gr, extra)
	if err != nil {
		return nil, nil, err
	}
	if len(gone) > 0 {
		// A scope group vanished between the rounds and the batch.
		return s.fullAsDelta(ctx)
	}
	d.Groups = groups
	for _, uid := range users {
		in, err := s.inScope(res, uid)
		if err != nil {
			return nil, nil, err
		}
		if !in {
			d.DeletedUsers = append(d.DeletedUsers, uid)
			continue
		}
		gu := ur.byID[uid]
		if gu == nil {
			r := res["u:"+uid]
			switch {
			case r == nil:
				return nil, nil, fmt.Errorf("read user %s: no answer", uid)
			case r.err != nil && r.err.Status == http.StatusNotFound:
				d.DeletedUsers = append(d.DeletedUsers, uid)
				continue
			case r.err != nil:
				return nil, nil, fmt.Errorf("read user %s: %w", uid, r.err)
			}
			gu = &graphUser{}
			if err := json.Unmarshal(r.body, gu); err != nil {
				return nil, nil, fmt.Errorf("user %s: unreadable: %w", uid, err)
			}
			s.items.Add(1)
		}
		u, skip := mapUser(gu)
		if skip != nil {
			d.Skipped = append(d.Skipped, *skip)
			continue
		}
		d.Users = append(d.Users, u)
	}
	return d, next, nil
}

// inScope reads a user's checkMemberGroups answers.
func (s *Source) inScope(res map[string]*result, uid string) (bool, error) {
	for i := 0; i < len(s.groupIDs); i += checkChunk {
		r := res[fmt.Sprintf("c:%s:%d", uid, i)]
		switch {
		case r == nil:
			return false, fmt.Errorf("checkMemberGroups %s: no answer", uid)
		case r.err != nil && r.err.Status == http.StatusNotFound:
			return false, nil
		case r.err != nil:
			return false, fmt.Errorf("checkMemberGroups %s: %w", uid, r.err)
		}
		var v struct {
			Value []string `json:"value"`
		}
		if err := json.Unmarshal(r.body, &v); err != nil {
			return false, fmt.Errorf("checkMemberGroups %s: unreadable: %w", uid, err)
		}
		if len(v.Value) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// fullAsDelta lists everything and hands it over as a delta whose Present
// set removes whatever left the scope.
func (s *Source) fullAsDelta(ctx context.Context) (*connectors.Delta, *cursor, error) {
	snap, cur, err := s.full(ctx)
	if err != nil {
		return nil, nil, err
	}
	d := &connectors.Delta{Users: snap.Users, Groups: snap.Groups, Skipped: snap.Skipped, Present: map[string]struct{}{}}
	for _, u := range snap.Users {
		d.Present[u.ExternalID] = struct{}{}
	}
	for _, sk := range snap.Skipped {
		d.Present[sk.ID] = struct{}{}
	}
	for _, g := range snap.Groups {
		d.Present[g.ExternalID] = struct{}{}
	}
	return d, cur, nil
}
