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

// memberRefs reads a members array: [{"value": id, "type": ...}].
func memberRefs(v any) ([]string, *scimError) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		if m, ok := v.(map[string]any); ok {
			list = []any{m}
		} else {
			return nil, errf(http.StatusBadRequest, "invalidValue", "members must be an array of {\"value\": id}")
		}
	}
	var ids []string
	for _, x := range list {
		switch t := x.(type) {
		case map[string]any:
			id := strings.TrimSpace(str(get(t, "value")))
			if id == "" {
				return nil, errf(http.StatusBadRequest, "invalidValue", "a member has no value (the member's id)")
			}
			ids = append(ids, id)
		case string:
			ids = append(ids, t)
		default:
			return nil, errf(http.StatusBadRequest, "invalidValue", "members must be an array of {\"value\": id}")
		}
	}
	return ids, nil
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

func (s *Server) createGroup(ctx context.Context, r *http.Request, dir *dirEntry, body []byte) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	ids, serr := memberRefs(get(m, "members"))
	if serr != nil {
		return result{}, serr
	}
	norm := normalizeGroup(m)
	name := strings.TrimSpace(str(norm["displayName"]))
	if name == "" {
		return result{}, errf(http.StatusBadRequest, "invalidValue", "displayName is required")
	}
	res, _ := json.Marshal(norm)
	g := &store.Group{DirectoryID: dir.dir.ID, ID: newID(), ExternalID: str(norm["externalId"]), DisplayName: name, Resource: res}
	var members []store.Member
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		now := time.Now()
		if err := tx.PutGroup(ctx, g, now); err != nil {
			return err
		}
		var err error
		if members, err = resolveMembers(ctx, tx, dir.dir.ID, g.ID, ids); err != nil {
			return err
		}
		_, err = tx.AddMembers(ctx, dir.dir.ID, g.ID, members, now)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a group with displayName %q already exists in this directory", name)
		}
		return result{}, fromTx(err, "Group")
	}
	s.wrote(dir.dir.ID)
	return result{status: http.StatusCreated, body: s.groupJSON(r, g, members), version: g.Version, location: s.location(r, dir.dir.ID, "Groups", g.ID)}, nil
}

func (s *Server) replaceGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string) (result, *scimError) {
	m, serr := decodeObject(body)
	if serr != nil {
		return result{}, serr
	}
	_, hasMembers := key(m, "members")
	ids, serr := memberRefs(get(m, "members"))
	if serr != nil {
		return result{}, serr
	}
	norm := normalizeGroup(m)
	name := strings.TrimSpace(str(norm["displayName"]))
	if name == "" {
		return result{}, errf(http.StatusBadRequest, "invalidValue", "displayName is required")
	}
	res, _ := json.Marshal(norm)
	var g *store.Group
	var members []store.Member
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetGroup(ctx, dir.dir.ID, id, true)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		now := time.Now()
		g = &store.Group{DirectoryID: dir.dir.ID, ID: id, ExternalID: str(norm["externalId"]), DisplayName: name, Resource: res, Version: cur.Version, CreatedAt: cur.CreatedAt}
		if err := tx.PutGroup(ctx, g, now); err != nil {
			return err
		}
		if hasMembers {
			want, err := resolveMembers(ctx, tx, dir.dir.ID, id, ids)
			if err != nil {
				return err
			}
			if _, _, err := tx.ReplaceMembers(ctx, dir.dir.ID, id, want, now); err != nil {
				return err
			}
		}
		members, err = tx.ListMembers(ctx, dir.dir.ID, id)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "a group with displayName %q already exists in this directory", name)
		}
		return result{}, fromTx(err, "Group "+id)
	}
	s.wrote(dir.dir.ID)
	if members == nil {
		members = []store.Member{}
	}
	return result{status: http.StatusOK, body: s.groupJSON(r, g, members), version: g.Version}, nil
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

// normalizeGroup cleans a group resource as stored (members live in rows).
func normalizeGroup(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch strings.ToLower(k) {
		case "id", "meta", "schemas", "members":
			continue
		case "displayname":
			out["displayName"] = v
		case "externalid":
			out["externalId"] = v
		default:
			out[k] = v
		}
	}
	return out
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
