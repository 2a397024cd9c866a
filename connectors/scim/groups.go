package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/roster-dev/roster/store"
)

func (s *Server) getGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, p projection) (result, *scimError) {
	g, err := s.opt.Store.GetGroup(ctx, dir.dir.ID, id)
	if err != nil {
		return result{}, storeErr(err, "Group "+id)
	}
	var members []store.Member
	if p.wants("members") {
		if members, err = s.opt.Store.ListMembers(ctx, dir.dir.ID, id); err != nil {
			return result{}, storeErr(err, "Group "+id)
		}
		if members == nil {
			members = []store.Member{}
		}
	}
	return result{status: http.StatusOK, body: p.apply(s.groupJSON(r, g, members)), version: g.Version}, nil
}

// resolveMembers looks up whether each id is a user or a group of the
// directory; unknown ids are an invalidValue error.
func resolveMembers(ctx context.Context, tx *store.Tx, dirID, groupID string, ids []string) ([]store.Member, error) {
	out := make([]store.Member, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if id == groupID {
			return nil, txErr{errf(http.StatusBadRequest, "invalidValue", "a group cannot be a member of itself")}
		}
		t, err := tx.MemberType(ctx, dirID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, txErr{errf(http.StatusBadRequest, "invalidValue", "member %q is not a user or group of this directory", id)}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, store.Member{ID: id, Type: t})
	}
	return out, nil
}

// groupFromBody reads a POST or PUT body as the group it describes.
func groupFromBody(dirID, id string, body []byte) (*store.Group, validated, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return nil, validated{}, serr
	}
	if serr := checkSchemas(m, groupKind); serr != nil {
		return nil, validated{}, serr
	}
	return groupFromResource(dirID, id, m)
}

// groupFromResource checks a group resource (a body, or a stored group with
// a PATCH applied) against the Group schema and maps it to a mirror group;
// its members come back apart, as ids.
func groupFromResource(dirID, id string, m map[string]any) (*store.Group, validated, *scimError) {
	v, serr := validate(m, groupKind)
	if serr != nil {
		return nil, validated{}, serr
	}
	name, _ := v.res["displayName"].(string)
	name = strings.TrimSpace(name)
	v.res["displayName"] = name
	g := &store.Group{DirectoryID: dirID, ID: id, DisplayName: name}
	g.ExternalID, _ = v.res["externalId"].(string)
	if g.Resource, serr = storedJSON("group", v.res); serr != nil {
		return nil, validated{}, serr
	}
	return g, v, nil
}

// sameGroup tells whether storing b's attributes in place of a's would
// change nothing.
func sameGroup(a, b *store.Group) bool {
	return a.DisplayName == b.DisplayName && a.ExternalID == b.ExternalID && sameJSON(a.Resource, b.Resource)
}

// sameMembers tells whether a group whose members are ms has exactly the
// members ids (each listed once).
func sameMembers(ms []store.Member, ids []string) bool {
	if len(ms) != len(ids) {
		return false
	}
	have := make(map[string]bool, len(ms))
	for _, m := range ms {
		have[m.ID] = true
	}
	for _, id := range ids {
		if !have[id] {
			return false
		}
	}
	return true
}

func (s *Server) createGroup(ctx context.Context, r *http.Request, dir *dirEntry, body []byte) (result, *scimError) {
	g, v, serr := groupFromBody(dir.dir.ID, newID(), body)
	if serr != nil {
		return result{}, serr
	}
	var members []store.Member
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		now := time.Now()
		if err := tx.PutGroup(ctx, g, now); err != nil {
			return err
		}
		var err error
		if members, err = resolveMembers(ctx, tx, dir.dir.ID, g.ID, v.members); err != nil {
			return err
		}
		_, err = tx.AddMembers(ctx, dir.dir.ID, g.ID, members, now)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a group with displayName %q already exists in this directory", g.DisplayName)
		}
		return result{}, fromTx(err, "Group")
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusCreated, body: s.groupJSON(r, g, members), version: g.Version, location: s.location(r, dir.dir.ID, "Groups", g.ID)}, nil
}

// replaceGroup answers a group PUT. A PUT that changes nothing (the same
// attributes, and the same members or none named) keeps the version and
// the modification time and writes nothing; it is recognised on a plain
// read first, so it costs no write transaction.
func (s *Server) replaceGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string) (result, *scimError) {
	dirID := dir.dir.ID
	ng, v, serr := groupFromBody(dirID, id, body)
	if serr != nil {
		return result{}, serr
	}
	answer := func(g *store.Group, members []store.Member) (result, *scimError) {
		return result{status: http.StatusOK, body: s.groupJSON(r, g, nonNil(members)), version: g.Version}, nil
	}
	cur, err := s.opt.Store.GetGroup(ctx, dirID, id)
	if errors.Is(err, store.ErrNotFound) {
		return result{}, storeErr(err, "Group "+id)
	}
	if err == nil && checkIfMatch(ifMatch, cur.Version) == nil && sameGroup(cur, ng) {
		members, err := s.opt.Store.ListMembers(ctx, dirID, id)
		if err == nil && (!v.hasMembers || sameMembers(members, v.members)) {
			return answer(cur, members)
		}
	}
	var g *store.Group
	var members []store.Member
	changed := false
	err = s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		changed = false
		cur, err := tx.GetGroup(ctx, dirID, id, true)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		now := time.Now()
		g = cur
		if !sameGroup(cur, ng) {
			put := *ng
			if err := tx.PutGroup(ctx, &put, now); err != nil {
				return err
			}
			g, changed = &put, true
		}
		if v.hasMembers {
			want, err := resolveMembers(ctx, tx, dirID, id, v.members)
			if err != nil {
				return err
			}
			added, removed, err := tx.ReplaceMembers(ctx, dirID, id, want, now)
			if err != nil {
				return err
			}
			if len(added)+len(removed) > 0 && !changed {
				// Only members changed: bump the version without
				// rewriting the group.
				version, at, err := tx.TouchGroup(ctx, dirID, id)
				if err != nil {
					return err
				}
				touched := *cur
				touched.Version, touched.UpdatedAt = version, at
				g, changed = &touched, true
			}
		}
		members, err = tx.ListMembers(ctx, dirID, id)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a group with displayName %q already exists in this directory", ng.DisplayName)
		}
		return result{}, fromTx(err, "Group "+id)
	}
	if changed {
		s.wrote(dirID)
	}
	return answer(g, members)
}

func (s *Server) deleteGroup(ctx context.Context, dir *dirEntry, id, ifMatch string) (result, *scimError) {
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetGroup(ctx, dir.dir.ID, id, true)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		return tx.DeleteGroup(ctx, dir.dir.ID, id, time.Now())
	})
	if err != nil {
		return result{}, fromTx(err, "Group "+id)
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusNoContent}, nil
}

// groupJSON renders a mirror group; members nil leaves them out.
func (s *Server) groupJSON(r *http.Request, g *store.Group, members []store.Member) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(g.Resource, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["id"] = g.ID
	m["displayName"] = g.DisplayName
	m["schemas"] = []string{URNGroup}
	if members != nil {
		list := make([]any, 0, len(members))
		for _, mem := range members {
			res := "Users"
			if mem.Type == store.MemberGroup {
				res = "Groups"
			}
			list = append(list, map[string]any{"value": mem.ID, "type": mem.Type, "$ref": s.location(r, g.DirectoryID, res, mem.ID)})
		}
		m["members"] = list
	}
	m["meta"] = metaOf("Group", s.location(r, g.DirectoryID, "Groups", g.ID), g.CreatedAt, g.UpdatedAt, g.Version)
	return m
}
