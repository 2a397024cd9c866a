package msgraph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/roster-dev/roster/connectors"
)

// userSelect is what roster reads of a user. Only these properties are
// tracked by users/delta, so a change to any other one costs nothing.
const userSelect = "id,displayName,givenName,surname,mail,userPrincipalName,accountEnabled"

// groupSelect tracks a group's name and its direct members.
const groupSelect = "id,displayName,members"

const (
	typeUser  = "#microsoft.graph.user"
	typeGroup = "#microsoft.graph.group"
)

// cursorVersion changes when the cursor's meaning does; an older cursor
// then asks for a full listing.
const cursorVersion = 1

// cursor is what the next incremental poll needs: the delta links that
// ended the last rounds, and with group_ids the groups in scope.
type cursor struct {
	V      int    `json:"v"`
	Users  string `json:"users"`
	Groups string `json:"groups"`
	// Digest fingerprints the settings the links were made for (graph_url,
	// group_ids); other settings need a full listing.
	Digest string `json:"digest"`
	// Scope is group_ids and every group nested in them.
	Scope []string `json:"scope,omitempty"`
}

func (s *Source) digest() string {
	h := sha256.Sum256([]byte(s.base + "\x00" + strings.Join(s.groupIDs, ",")))
	return hex.EncodeToString(h[:8])
}

type removed struct {
	Reason string `json:"reason"`
}

type graphUser struct {
	ID                string   `json:"id"`
	DisplayName       *string  `json:"displayName"`
	GivenName         *string  `json:"givenName"`
	Surname           *string  `json:"surname"`
	Mail              *string  `json:"mail"`
	UserPrincipalName *string  `json:"userPrincipalName"`
	AccountEnabled    *bool    `json:"accountEnabled"`
	Removed           *removed `json:"@removed"`
}

type graphRef struct {
	Type    string   `json:"@odata.type"`
	ID      string   `json:"id"`
	Removed *removed `json:"@removed"`
}

type graphGroup struct {
	ID          string     `json:"id"`
	DisplayName *string    `json:"displayName"`
	Members     []graphRef `json:"members@delta"`
	Removed     *removed   `json:"@removed"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// mapUser turns a Graph user into a roster user. The email is mail, else
// the userPrincipalName when it is an address of the tenant (a guest's
// #EXT# name is not).
func mapUser(g *graphUser) (connectors.User, *connectors.Skipped) {
	email := strings.ToLower(strings.TrimSpace(str(g.Mail)))
	upn := strings.TrimSpace(str(g.UserPrincipalName))
	if email == "" && strings.Contains(upn, "@") && !strings.Contains(strings.ToUpper(upn), "#EXT#") {
		email = strings.ToLower(upn)
	}
	if email == "" {
		return connectors.User{}, &connectors.Skipped{ID: g.ID, Reason: "no mail, and the userPrincipalName is not an address; set the user's Email in Entra"}
	}
	u := connectors.User{
		ExternalID:  g.ID,
		UserName:    upn,
		Email:       email,
		DisplayName: str(g.DisplayName),
		GivenName:   str(g.GivenName),
		FamilyName:  str(g.Surname),
		Active:      g.AccountEnabled == nil || *g.AccountEnabled,
	}
	if upn != "" {
		u.Attrs = map[string]any{"userPrincipalName": upn}
	}
	return u, nil
}

// memberKind says what a members@delta or members entry is: "user",
// "group", or "" for the other directory objects (devices, contacts,
// service principals), which are not people.
func memberKind(t string) string {
	switch t {
	case typeUser:
		return "user"
	case typeGroup:
		return "group"
	}
	return ""
}

// usersRound is what one users/delta round said, the last word on each
// user winning (Graph may name a user more than once).
type usersRound struct {
	order []string
	byID  map[string]*graphUser
}

func (r *usersRound) add(raw json.RawMessage) error {
	var u graphUser
	if err := json.Unmarshal(raw, &u); err != nil {
		return fmt.Errorf("users/delta: unreadable user: %w", err)
	}
	if u.ID == "" {
		return nil
	}
	if _, seen := r.byID[u.ID]; !seen {
		r.order = append(r.order, u.ID)
	}
	r.byID[u.ID] = &u
	return nil
}

// groupState gathers one group's entries of a groups/delta round: one
// group's members@delta is split over several entries, on any page.
type groupState struct {
	name    string
	hasName bool
	removed bool
	// members: member id -> kind, for members added (or listed, in a first
	// round); gone: members removed.
	members map[string]string
	gone    map[string]string
	// groupChange is set when a member that is a group came or went.
	groupChange bool
}

type groupsRound struct {
	order []string
	byID  map[string]*groupState
	refs  int
}

func (r *groupsRound) add(raw json.RawMessage) error {
	var g graphGroup
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("groups/delta: unreadable group: %w", err)
	}
	if g.ID == "" {
		return nil
	}
	st := r.byID[g.ID]
	if st == nil {
		st = &groupState{members: map[string]string{}, gone: map[string]string{}}
		r.byID[g.ID] = st
		r.order = append(r.order, g.ID)
	}
	if g.Removed != nil {
		st.removed = true
		return nil
	}
	// A group named again after a removal was restored.
	st.removed = false
	if g.DisplayName != nil {
		st.name, st.hasName = *g.DisplayName, true
	}
	for _, m := range g.Members {
		r.refs++
		kind := memberKind(m.Type)
		if kind == "" || m.ID == "" {
			continue
		}
		if kind == "group" {
			st.groupChange = true
		}
		if m.Removed != nil {
			delete(st.members, m.ID)
			st.gone[m.ID] = kind
		} else {
			delete(st.gone, m.ID)
			st.members[m.ID] = kind
		}
	}
	return nil
}

// rounds reads a users round and a groups round at the same time.
func (s *Source) rounds(ctx context.Context, usersURL, groupsURL string) (*usersRound, *groupsRound, *cursor, error) {
	ur := &usersRound{byID: map[string]*graphUser{}}
	gr := &groupsRound{byID: map[string]*groupState{}}
	cur := &cursor{V: cursorVersion, Digest: s.digest()}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		link, err := s.readDelta(gctx, usersURL, ur.add)
		cur.Users = link
		return err
	})
	g.Go(func() error {
		link, err := s.readDelta(gctx, groupsURL, gr.add)
		cur.Groups = link
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, nil, err
	}
	s.items.Add(int64(len(ur.byID) + len(gr.byID) + gr.refs))
	return ur, gr, cur, nil
}

// Full lists every user and group (with group_ids, those in scope) and
// returns the delta links as the cursor.
func (s *Source) Full(ctx context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	snap, cur, err := s.full(ctx)
	if err != nil {
		return nil, nil, err
	}
	raw, err := json.Marshal(cur)
	if err != nil {
		return nil, nil, fmt.Errorf("cursor: %w", err)
	}
	return snap, raw, nil
}

func (s *Source) full(ctx context.Context) (*connectors.Snapshot, *cursor, error) {
	ur, gr, cur, err := s.rounds(ctx,
		s.base+"/users/delta?"+url.Values{"$select": {userSelect}}.Encode(),
		s.base+"/groups/delta?"+url.Values{"$select": {groupSelect}}.Encode())
	if err != nil {
		return nil, nil, fmt.Errorf("list the directory: %w", err)
	}
	snap := &connectors.Snapshot{}
	inScope := func(string) bool { return true }
	groupIDs := gr.order
	if len(s.groupIDs) > 0 {
		scope, users, err := s.closure(gr)
		if err != nil {
			return nil, nil, err
		}
		cur.Scope = sortedSet(scope)
		groupIDs = cur.Scope
		inScope = func(id string) bool { return users[id] }
	}
	for _, id := range ur.order {
		gu := ur.byID[id]
		if gu.Removed != nil || !inScope(id) {
			continue
		}
		u, skip := mapUser(gu)
		if skip != nil {
			snap.Skipped = append(snap.Skipped, *skip)
			continue
		}
		snap.Users = append(snap.Users, u)
	}
	for _, id := range groupIDs {
		st := gr.byID[id]
		if st == nil || st.removed {
			continue
		}
		snap.Groups = append(snap.Groups, connectors.Group{ExternalID: id, Name: st.name, Members: sortedSet(st.members)})
	}
	s.log.Debug("msgraph full listing", "users", len(snap.Users), "groups", len(snap.Groups), "skipped", len(snap.Skipped),
		"scoped", len(s.groupIDs) > 0, "usage", s.Usage())
	return snap, cur, nil
}

// Changes lists what changed since cursor. A delta link Graph no longer
// knows is connectors.ErrResync.
func (s *Source) Changes(ctx context.Context, raw json.RawMessage) (*connectors.Delta, json.RawMessage, error) {
	var cur cursor
	if err := json.Unmarshal(raw, &cur); err != nil || cur.V != cursorVersion || cur.Users == "" || cur.Groups == "" {
		return nil, nil, fmt.Errorf("%w: the cursor is not one this connector made", connectors.ErrResync)
	}
	if cur.Digest != s.digest() {
		return nil, nil, fmt.Errorf("%w: graph_url or group_ids changed since the last full listing", connectors.ErrResync)
	}
	usersURL, err := s.link(cur.Users)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cursor: %v", connectors.ErrResync, err)
	}
	groupsURL, err := s.link(cur.Groups)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: cursor: %v", connectors.ErrResync, err)
	}
	ur, gr, next, err := s.rounds(ctx, usersURL, groupsURL)
	if err != nil {
		if isResync(err) {
			return nil, nil, fmt.Errorf("%w: %v", connectors.ErrResync, err)
		}
		return nil, nil, fmt.Errorf("read changes: %w", err)
	}
	var d *connectors.Delta
	if len(s.groupIDs) == 0 {
		d, err = s.changesAll(ctx, ur, gr)
	} else {
		next.Scope = cur.Scope
		d, next, err = s.changesScoped(ctx, ur, gr, next)
	}
	if err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(next)
	if err != nil {
		return nil, nil, fmt.Errorf("cursor: %w", err)
	}
	s.log.Debug("msgraph changes", "users", len(d.Users), "groups", len(d.Groups), "deleted_users", len(d.DeletedUsers),
		"deleted_groups", len(d.DeletedGroups), "relisted", d.Present != nil, "usage", s.Usage())
	return d, out, nil
}

// changesAll is an incremental poll of the whole tenant.
func (s *Source) changesAll(ctx context.Context, ur *usersRound, gr *groupsRound) (*connectors.Delta, error) {
	d := &connectors.Delta{}
	for _, id := range ur.order {
		gu := ur.byID[id]
		if gu.Removed != nil {
			d.DeletedUsers = append(d.DeletedUsers, id)
			continue
		}
		u, skip := mapUser(gu)
		if skip != nil {
			d.Skipped = append(d.Skipped, *skip)
			continue
		}
		d.Users = append(d.Users, u)
	}
	var changed []string
	for _, id := range gr.order {
		if gr.byID[id].removed {
			d.DeletedGroups = append(d.DeletedGroups, id)
		} else {
			changed = append(changed, id)
		}
	}
	groups, gone, _, err := s.rereadGroups(ctx, changed, gr, nil)
	if err != nil {
		return nil, err
	}
	d.Groups = groups
	d.DeletedGroups = append(d.DeletedGroups, gone...)
	return d, nil
}

// rereadGroups reads the complete direct members of groups (Graph's delta
// gives only the members that changed), and the name of those whose delta
// entries lacked it, in $batch requests. extra jobs ride along in the same
// batches. Groups Graph no longer finds are returned as gone.
func (s *Source) rereadGroups(ctx context.Context, ids []string, gr *groupsRound, extra []*job) ([]connectors.Group, []string, map[string]*result, error) {
	jobs := append([]*job(nil), extra...)
	for _, id := range ids {
		jobs = append(jobs, &job{key: "m:" + id, method: http.MethodGet, list: true, top: memberPage,
			url: "/groups/" + url.PathEscape(id) + "/members?" + url.Values{"$select": {"id"}, "$top": {fmt.Sprint(memberPage)}}.Encode()})
		if st := gr.byID[id]; st == nil || !st.hasName {
			jobs = append(jobs, &job{key: "g:" + id, method: http.MethodGet,
				url: "/groups/" + url.PathEscape(id) + "?" + url.Values{"$select": {"id,displayName"}}.Encode()})
		}
	}
	if len(jobs) == 0 {
		return nil, nil, nil, nil
	}
	res, err := s.run(ctx, jobs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read changed groups: %w", err)
	}
	var groups []connectors.Group
	var gone []string
	for _, id := range ids {
		m := res["m:"+id]
		if m == nil {
			return nil, nil, nil, fmt.Errorf("read changed groups: no answer for group %s", id)
		}
		if m.err != nil {
			if m.err.Status == http.StatusNotFound {
				gone = append(gone, id)
				continue
			}
			return nil, nil, nil, fmt.Errorf("read members of group %s: %w", id, m.err)
		}
		members := map[string]string{}
		for _, raw := range m.values {
			var ref graphRef
			if err := json.Unmarshal(raw, &ref); err != nil {
				return nil, nil, nil, fmt.Errorf("members of group %s: unreadable entry: %w", id, err)
			}
			if kind := memberKind(ref.Type); kind != "" && ref.ID != "" {
				members[ref.ID] = kind
			}
		}
		s.items.Add(int64(len(m.values)))
		g := connectors.Group{ExternalID: id, Members: sortedSet(members)}
		if st := gr.byID[id]; st != nil && st.hasName {
			g.Name = st.name
		} else if r := res["g:"+id]; r != nil {
			if r.err != nil {
				if r.err.Status == http.StatusNotFound {
					gone = append(gone, id)
					continue
				}
				return nil, nil, nil, fmt.Errorf("read group %s: %w", id, r.err)
			}
			var obj struct {
				DisplayName string `json:"displayName"`
			}
			if err := json.Unmarshal(r.body, &obj); err != nil {
				return nil, nil, nil, fmt.Errorf("group %s: unreadable: %w", id, err)
			}
			g.Name = obj.DisplayName
		}
		groups = append(groups, g)
	}
	return groups, gone, res, nil
}

// Check proves the credential and both permissions with two cheap calls:
// "sync from now" delta requests for users and for groups, which return no
// data. With group_ids it also checks that each group exists.
func (s *Source) Check(ctx context.Context) error {
	if _, err := s.tokens.Token(ctx); err != nil {
		return err
	}
	probes := []struct{ what, url string }{
		{"users", s.base + "/users/delta?" + url.Values{"$select": {"id"}, "$deltatoken": {"latest"}}.Encode()},
		{"groups", s.base + "/groups/delta?" + url.Values{"$select": {"id"}, "$deltatoken": {"latest"}}.Encode()},
	}
	errs := make([]error, len(probes))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range probes {
		g.Go(func() error {
			if _, err := s.do(gctx, http.MethodGet, p.url, nil, nil); err != nil {
				errs[i] = checkError(p.what, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(s.groupIDs) == 0 {
		return nil
	}
	var jobs []*job
	for _, id := range s.groupIDs {
		jobs = append(jobs, &job{key: id, method: http.MethodGet, url: "/groups/" + url.PathEscape(id) + "?$select=id"})
	}
	res, err := s.run(ctx, jobs)
	if err != nil {
		return checkError("groups", err)
	}
	var missing []string
	for _, id := range s.groupIDs {
		r := res[id]
		switch {
		case r == nil:
			return fmt.Errorf("check group_ids: no answer for %s", id)
		case r.err != nil && r.err.Status == http.StatusNotFound:
			missing = append(missing, id)
		case r.err != nil:
			return checkError("groups", r.err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("group_ids: %s not found in the tenant; give the Object ID of existing groups", strings.Join(missing, ", "))
	}
	return nil
}

// checkError names the fix for a failed check.
func checkError(what string, err error) error {
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	var ge *GraphError
	if !errors.As(err, &ge) {
		return fmt.Errorf("reach Microsoft Graph (%s): %w; check graph_url and the network path to it", what, err)
	}
	switch {
	case ge.Status == http.StatusForbidden || ge.HasCode("Authorization_RequestDenied"):
		perm := "User.Read.All"
		if what == "groups" {
			perm = "GroupMember.Read.All"
		}
		return fmt.Errorf("read %s: Microsoft Graph answered %s: grant the application permissions GroupMember.Read.All and User.Read.All (Microsoft Graph, Application permissions) with admin consent; %s is missing. In the Entra admin center: App registrations, this app, API permissions, Add a permission, then Grant admin consent: %w", what, ge.Code, perm, err)
	case ge.Status == http.StatusUnauthorized:
		return fmt.Errorf("read %s: Microsoft Graph refused the access token: check that tenant_id is the app's tenant and that graph_url and login_url belong to the same cloud: %w", what, err)
	}
	return fmt.Errorf("check %s: %w", what, err)
}

func sortedSet[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
