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
	u, changed, err := s.updateUser(ctx, dir.dir.ID, id, ifMatch, func(cur *store.User) (*store.User, *scimError) {
		var res map[string]any
		if err := json.Unmarshal(cur.Resource, &res); err != nil || res == nil {
			res = map[string]any{}
		}
		res["userName"] = cur.UserName
		res["active"] = cur.Active
		applied, err := patch.Apply(res, ops, patch.UserSchema)
		if err != nil {
			return nil, patchErr(err)
		}
		return userFromResource(cur.DirectoryID, cur.ID, applied)
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
	return result{status: http.StatusOK, body: s.writtenUserBody(ctx, r, u, parseProjection(q)), version: u.Version}, nil
}

// patchGroup answers a group PATCH. It loads what the request depends on,
// plans what it changes and writes the plan, all in one transaction, then
// answers 204, or the group when the client asked for attributes.
func (s *Server) patchGroup(ctx context.Context, r *http.Request, dir *dirEntry, id string, body []byte, ifMatch string, q url.Values) (result, *scimError) {
	req, serr := readGroupPatch(body, ifMatch, q)
	if serr != nil {
		return result{}, serr
	}
	dirID := dir.dir.ID
	var g *store.Group
	changed := false
	err := s.opt.Store.WithTx(ctx, func(tx *store.Tx) error {
		cur, members, err := loadPatchedGroup(ctx, tx, dirID, id, req)
		if err != nil {
			return err
		}
		plan, serr := planGroupPatch(dirID, id, cur, members, req)
		if serr != nil {
			return txErr{serr}
		}
		g, changed, err = writeGroupPatch(ctx, tx, dirID, id, cur, plan, time.Now())
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return result{}, errf(http.StatusConflict, "uniqueness", "another group of this directory has that displayName")
		}
		return result{}, fromTx(err, "Group "+id)
	}
	if changed {
		s.wrote(dirID)
	}
	// A group may hold many members: answer 204 unless the client asked
	// for attributes, so a one-member change costs the same for any size.
	if !req.answer {
		return result{status: http.StatusNoContent, version: g.Version}, nil
	}
	proj := parseProjection(q)
	var members []store.Member
	if proj.wants("members") {
		if members, err = s.opt.Store.ListMembers(ctx, dirID, id); err != nil {
			return result{}, storeErr(err, "Group "+id)
		}
		members = nonNil(members)
	}
	return result{status: http.StatusOK, body: proj.apply(s.groupJSON(r, g, members)), version: g.Version}, nil
}

// groupPatchRequest is a group PATCH as its request states it, before the
// group is read.
type groupPatchRequest struct {
	ops     []patch.Operation // as sent
	split   patch.GroupPatch  // the member deltas set apart from the rest
	ifMatch string
	// lock: what is written depends on what is read, so the group's row
	// is locked when it is read.
	lock bool
	// answer: the client asked for attributes, so the answer is the group
	// (200), not 204.
	answer bool
}

// readGroupPatch decodes a group PATCH and decides how the group is read.
// Plain member deltas commute: each adds or removes rows and the version
// bump comes last, so they need no lock on the group's row until then (on
// PostgreSQL, TouchGroup's update takes it for just the commit). Anything
// that reads the group to decide what to write (If-Match, attributes, a
// member list to diff) locks it first.
func readGroupPatch(body []byte, ifMatch string, q url.Values) (groupPatchRequest, *scimError) {
	ops, serr := parsePatch(body)
	if serr != nil {
		return groupPatchRequest{}, serr
	}
	split, err := patch.SplitGroupPatch(ops)
	if err != nil {
		return groupPatchRequest{}, patchErr(err)
	}
	_, answer := q["attributes"]
	return groupPatchRequest{
		ops: ops, split: split, ifMatch: ifMatch, answer: answer,
		lock: ifMatch != "" || len(split.Ops) > 0 || split.NeedsMembers || split.ReplaceMembers,
	}, nil
}

// readsGroup says whether the group is read before the write. Plain
// member deltas answered with 204 do not read it: TouchGroup finds a
// missing group (rolling the rows back), and only a request that changed
// nothing reads the version for its ETag.
func (req groupPatchRequest) readsGroup() bool { return req.lock || req.answer }

// attrOps are the operations applied to the group's resource: the ones on
// attributes other than members or, when a member operation is not a
// plain delta, the whole request, applied to the group with its members.
func (req groupPatchRequest) attrOps() []patch.Operation {
	if req.split.NeedsMembers {
		return req.ops
	}
	return req.split.Ops
}

// loadPatchedGroup reads what a group PATCH decides on: the group, checked
// against If-Match (nil when the request need not read it, see
// readsGroup), and its members when a member operation must be applied to
// the whole list.
func loadPatchedGroup(ctx context.Context, tx *store.Tx, dirID, id string, req groupPatchRequest) (*store.Group, []store.Member, error) {
	if !req.readsGroup() {
		return nil, nil, nil
	}
	cur, err := tx.GetGroup(ctx, dirID, id, req.lock)
	if err != nil {
		return nil, nil, err
	}
	if e := checkIfMatch(req.ifMatch, cur.Version); e != nil {
		return nil, nil, txErr{e}
	}
	if !req.split.NeedsMembers {
		return cur, nil, nil
	}
	members, err := tx.ListMembers(ctx, dirID, id)
	if err != nil {
		return nil, nil, err
	}
	return cur, members, nil
}

// groupPlan is what a group PATCH writes.
type groupPlan struct {
	// group holds the group's new attributes; nil when they stay as they
	// are (no attribute operation, or one that changes nothing).
	group *store.Group
	// replace: the members become exactly members. Otherwise the remove
	// ids leave the group, then the add ids join it.
	replace bool
	members []string
	remove  []string
	add     []string
}

// planGroupPatch decides what a group PATCH changes, given the group as
// loaded (nil for plain member deltas) and its members (loaded only when a
// member operation is not a plain delta). It reads and writes nothing:
// whether each member id is a user or group of the directory is checked
// when the plan is written.
func planGroupPatch(dirID, id string, cur *store.Group, members []store.Member, req groupPatchRequest) (groupPlan, *scimError) {
	split := req.split
	p := groupPlan{replace: split.ReplaceMembers, remove: split.Remove}
	if p.replace {
		p.members = memberValues(split.Members)
	} else {
		p.add = memberValues(split.Add)
	}
	ops := req.attrOps()
	if len(ops) == 0 {
		// Plain member deltas (the common PATCH) never look at the
		// resource, so it is only decoded for attribute operations.
		return p, nil
	}
	var res map[string]any
	if err := json.Unmarshal(cur.Resource, &res); err != nil || res == nil {
		res = map[string]any{}
	}
	res["displayName"] = cur.DisplayName
	res["id"] = cur.ID
	if split.NeedsMembers {
		list := make([]any, len(members))
		for i, m := range members {
			list[i] = map[string]any{"value": m.ID, "type": m.Type}
		}
		res["members"] = list
	}
	applied, err := patch.Apply(res, ops, patch.GroupSchema)
	if err != nil {
		return groupPlan{}, patchErr(err)
	}
	g, v, serr := groupFromResource(dirID, id, applied)
	if serr != nil {
		return groupPlan{}, serr
	}
	if split.NeedsMembers {
		// The members the request left replace the stored ones.
		p.replace, p.members, p.remove, p.add = true, v.members, nil, nil
	}
	if !sameGroup(cur, g) {
		p.group = g
	}
	return p, nil
}

// writeGroupPatch writes a plan inside the PATCH's transaction: the new
// attributes, then the members, then a version bump when only members
// changed. It returns the group the answer is built from (its version, at
// least) and whether anything changed. cur is the group as loaded, nil
// when it was not read.
func writeGroupPatch(ctx context.Context, tx *store.Tx, dirID, id string, cur *store.Group, p groupPlan, now time.Time) (*store.Group, bool, error) {
	g := cur
	if p.group != nil {
		if err := tx.PutGroup(ctx, p.group, now); err != nil {
			return nil, false, err
		}
		g = p.group
	}
	memberChange, err := writeGroupMembers(ctx, tx, dirID, id, p, now)
	if err != nil {
		return nil, false, err
	}
	if memberChange && p.group == nil {
		v, at, err := tx.TouchGroup(ctx, dirID, id)
		if err != nil {
			return nil, false, err
		}
		if g == nil {
			g = &store.Group{DirectoryID: dirID, ID: id}
		}
		g.Version, g.UpdatedAt = v, at
	}
	if g == nil {
		// Nothing changed: the group must still exist (404 otherwise),
		// and the answer carries its current version.
		if g, err = tx.GetGroup(ctx, dirID, id, false); err != nil {
			return nil, false, err
		}
	}
	return g, p.group != nil || memberChange, nil
}

// writeGroupMembers writes a plan's members and reports whether any
// membership row changed. A member id that is not a user or group of the
// directory fails the request.
func writeGroupMembers(ctx context.Context, tx *store.Tx, dirID, id string, p groupPlan, now time.Time) (bool, error) {
	if p.replace {
		want, err := resolveMembers(ctx, tx, dirID, id, p.members)
		if err != nil {
			return false, err
		}
		added, removed, err := tx.ReplaceMembers(ctx, dirID, id, want, now)
		if err != nil {
			return false, err
		}
		return len(added)+len(removed) > 0, nil
	}
	changed := false
	if len(p.remove) > 0 {
		removed, err := tx.RemoveMembers(ctx, dirID, id, p.remove, now)
		if err != nil {
			return false, err
		}
		changed = len(removed) > 0
	}
	if len(p.add) > 0 {
		want, err := resolveMembers(ctx, tx, dirID, id, p.add)
		if err != nil {
			return false, err
		}
		added, err := tx.AddMembers(ctx, dirID, id, want, now)
		if err != nil {
			return false, err
		}
		changed = changed || len(added) > 0
	}
	return changed, nil
}

func memberValues(ms []patch.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Value
	}
	return out
}
