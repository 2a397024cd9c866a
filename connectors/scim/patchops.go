package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/roster-dev/roster/connectors/scim/patch"
	"github.com/roster-dev/roster/store"
)

// parsePatch reads a PatchOp body.
func parsePatch(body []byte) ([]patch.Operation, *scimError) {
	var req struct {
		Schemas    []string          `json:"schemas"`
		Operations []json.RawMessage `json:"Operations"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errf(http.StatusBadRequest, "invalidSyntax", "PATCH body is not a PatchOp JSON object: %v", err)
	}
	if len(req.Operations) == 0 {
		// Some clients spell it "operations".
		var alt map[string]json.RawMessage
		_ = json.Unmarshal(body, &alt)
		for k, v := range alt {
			if strings.EqualFold(k, "operations") {
				_ = json.Unmarshal(v, &req.Operations)
			}
		}
	}
	if len(req.Operations) == 0 {
		return nil, errf(http.StatusBadRequest, "invalidValue", "PATCH needs a non-empty Operations array")
	}
	ops := make([]patch.Operation, 0, len(req.Operations))
	for i, raw := range req.Operations {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, errf(http.StatusBadRequest, "invalidSyntax", "operation %d is not an object", i+1)
		}
		var op patch.Operation
		for k, v := range m {
			switch strings.ToLower(k) {
			case "op":
				_ = json.Unmarshal(v, &op.Op)
			case "path":
				_ = json.Unmarshal(v, &op.Path)
			case "value":
				var val any
				if err := json.Unmarshal(v, &val); err != nil {
					return nil, errf(http.StatusBadRequest, "invalidSyntax", "operation %d: bad value: %v", i+1, err)
				}
				op.Value = val
			}
		}
		switch strings.ToLower(op.Op) {
		case "add", "replace", "remove":
		default:
			return nil, errf(http.StatusBadRequest, "invalidValue", "operation %d: op must be add, replace or remove, got %q", i+1, op.Op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// patchErr maps the patch package's errors to SCIM errors.
func patchErr(err error) *scimError {
	var typed interface{ ScimType() string }
	if errors.As(err, &typed) {
		st := typed.ScimType()
		status := http.StatusBadRequest
		return errf(status, st, "%v", err)
	}
	var se *scimError
	if errors.As(err, &se) {
		return se
	}
	return errf(http.StatusBadRequest, "invalidValue", "%v", err)
}

func (s *Server) patchUser(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string, q url.Values) (result, *scimError) {
	ops, serr := parsePatch(body)
	if serr != nil {
		return result{}, serr
	}
	var nu *store.User
	changed := false
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetUser(ctx, dir.dir.ID, id)
		if err != nil {
			return err
		}
		if e := checkIfMatch(ifMatch, cur.Version); e != nil {
			return txErr{e}
		}
		var res map[string]any
		if err := json.Unmarshal(cur.Resource, &res); err != nil || res == nil {
			res = map[string]any{}
		}
		res["userName"] = cur.UserName
		res["active"] = cur.Active
		applied, err := patch.Apply(res, ops, patch.UserSchema)
		if err != nil {
			return txErr{patchErr(err)}
		}
		norm, serr := normalizeUser(applied)
		if serr != nil {
			return txErr{serr}
		}
		nu, serr = userFromResource(dir.dir.ID, id, norm)
		if serr != nil {
			return txErr{serr}
		}
		nu.Version, nu.CreatedAt, nu.UpdatedAt = cur.Version, cur.CreatedAt, cur.UpdatedAt
		if string(nu.Resource) == string(cur.Resource) && nu.UserName == cur.UserName && nu.Active == cur.Active {
			// Nothing changed (a replay): keep version and time.
			nu = cur
			return nil
		}
		changed = true
		return tx.PutUser(ctx, nu, time.Now())
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "another user of this directory has that userName")
		}
		return result{}, fromTx(err, "User "+id)
	}
	if changed {
		s.wrote(dir.dir.ID)
	}
	return result{status: http.StatusOK, body: s.writtenUserBody(ctx, r, nu, parseProjection(q)), version: nu.Version}, nil
}

func (s *Server) patchGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string, q url.Values) (result, *scimError) {
	ops, serr := parsePatch(body)
	if serr != nil {
		return result{}, serr
	}
	gp, err := patch.SplitGroupPatch(ops)
	if err != nil {
		return result{}, patchErr(err)
	}
	var g *store.Group
	changed := false
	// Plain member deltas commute: each adds or removes rows and the
	// version bump comes last, so they need no lock on the group's row
	// until then (on PostgreSQL, TouchGroup's update takes it for just the
	// commit). Anything that reads the group to decide what to write
	// (If-Match, attributes, a member list to diff) locks it first.
	lock := ifMatch != "" || len(gp.Ops) > 0 || gp.NeedsMembers || gp.ReplaceMembers
	_, answer := q["attributes"]
	// Plain deltas answered with 204 do not read the group first either:
	// TouchGroup finds a missing group (rolling the rows back), and only a
	// request that changed nothing reads the version for its ETag.
	deltasOnly := !lock && !answer
	err = s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		g = nil
		var cur *store.Group
		if !deltasOnly {
			var err error
			if cur, err = tx.GetGroup(ctx, dir.dir.ID, id, lock); err != nil {
				return err
			}
			if e := checkIfMatch(ifMatch, cur.Version); e != nil {
				return txErr{e}
			}
			g = cur
		}
		now := time.Now()
		attrOps := gp.Ops
		if gp.NeedsMembers {
			// A member operation that is not a plain delta: apply the
			// whole request to the group with its members.
			attrOps = ops
		}
		var res map[string]any
		if len(attrOps) > 0 {
			// Plain member deltas (the common PATCH) never look at the
			// resource, so it is only decoded for attribute operations.
			if err := json.Unmarshal(cur.Resource, &res); err != nil || res == nil {
				res = map[string]any{}
			}
			res["displayName"] = cur.DisplayName
			res["id"] = cur.ID
		}
		if gp.NeedsMembers {
			ms, err := tx.ListMembers(ctx, dir.dir.ID, id)
			if err != nil {
				return err
			}
			list := make([]any, len(ms))
			for i, m := range ms {
				list[i] = map[string]any{"value": m.ID, "type": m.Type}
			}
			res["members"] = list
		}
		if len(attrOps) > 0 {
			applied, err := patch.Apply(res, attrOps, patch.GroupSchema)
			if err != nil {
				return txErr{patchErr(err)}
			}
			if gp.NeedsMembers {
				ids, serr := memberRefs(get(applied, "members"))
				if serr != nil {
					return txErr{serr}
				}
				gp.ReplaceMembers = true
				gp.Members = nil
				for _, mid := range ids {
					gp.Members = append(gp.Members, patch.Member{Value: mid})
				}
			}
			norm := normalizeGroup(applied)
			name := strings.TrimSpace(str(norm["displayName"]))
			if name == "" {
				return txErr{errf(http.StatusBadRequest, "invalidValue", "displayName cannot be removed or empty")}
			}
			resJSON, _ := json.Marshal(norm)
			if name != cur.DisplayName || string(resJSON) != string(cur.Resource) {
				ng := &store.Group{DirectoryID: dir.dir.ID, ID: id, ExternalID: str(norm["externalId"]), DisplayName: name, Resource: resJSON, Version: cur.Version, CreatedAt: cur.CreatedAt}
				if err := tx.PutGroup(ctx, ng, now); err != nil {
					return err
				}
				g, changed = ng, true
			}
		}
		memberChange := false
		if gp.ReplaceMembers {
			want, err := resolveMembers(ctx, tx, dir.dir.ID, id, memberValues(gp.Members))
			if err != nil {
				return err
			}
			added, removed, err := tx.ReplaceMembers(ctx, dir.dir.ID, id, want, now)
			if err != nil {
				return err
			}
			memberChange = len(added)+len(removed) > 0
		} else {
			if len(gp.Remove) > 0 {
				removed, err := tx.RemoveMembers(ctx, dir.dir.ID, id, gp.Remove, now)
				if err != nil {
					return err
				}
				memberChange = len(removed) > 0
			}
			if len(gp.Add) > 0 {
				want, err := resolveMembers(ctx, tx, dir.dir.ID, id, memberValues(gp.Add))
				if err != nil {
					return err
				}
				added, err := tx.AddMembers(ctx, dir.dir.ID, id, want, now)
				if err != nil {
					return err
				}
				memberChange = memberChange || len(added) > 0
			}
		}
		if memberChange && !changed {
			v, at, err := tx.TouchGroup(ctx, dir.dir.ID, id)
			if err != nil {
				return err
			}
			if g == nil {
				g = &store.Group{DirectoryID: dir.dir.ID, ID: id}
			}
			g.Version, g.UpdatedAt = v, at
		}
		if g == nil {
			// Nothing changed: the group must still exist (404 otherwise),
			// and the answer carries its current version.
			var err error
			if g, err = tx.GetGroup(ctx, dir.dir.ID, id, false); err != nil {
				return err
			}
		}
		changed = changed || memberChange
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "another group of this directory has that displayName")
		}
		return result{}, fromTx(err, "Group "+id)
	}
	if changed {
		s.wrote(dir.dir.ID)
	}
	// A group may hold many members: answer 204 unless the client asked
	// for attributes, so a one-member change costs the same for any size.
	if !answer {
		return result{status: http.StatusNoContent, version: g.Version}, nil
	}
	proj := parseProjection(q)
	var members []store.Member
	if proj.wants("members") {
		if members, err = s.opt.Store.ListMembers(ctx, dir.dir.ID, id); err != nil {
			return result{}, storeErr(err, "Group "+id)
		}
		members = nonNil(members)
	}
	return result{status: http.StatusOK, body: proj.apply(s.groupJSON(r, g, members)), version: g.Version}, nil
}

func memberValues(ms []patch.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Value
	}
	return out
}
