package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/sync/poll"
	"github.com/roster-dev/roster/sync/reconcile"
)

// SCIMTokenPrefix starts every SCIM bearer token roster issues.
const SCIMTokenPrefix = "rst_scim_"

// EligibilityError says why a team may not connect a directory, or "".
func EligibilityError(t *store.Team) string {
	sso := t.SSOActive()
	ent := t.Plan == store.PlanEnterprise
	switch {
	case !sso && !ent:
		return fmt.Sprintf("SCIM requires an active SSO connection and the enterprise plan (this team is on the %s plan): upgrade the plan and activate SSO first", t.Plan)
	case !sso:
		return "SCIM requires an active SSO connection: activate the team's SSO connection first, then connect a directory"
	case !ent:
		return fmt.Sprintf("SCIM requires the enterprise plan; this team is on the %s plan", t.Plan)
	}
	return ""
}

func (s *Server) scimBaseURL(r *http.Request, dirID string) string {
	base := strings.TrimRight(s.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/scim/v2/" + dirID
}

func (s *Server) createDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	var raw map[string]json.RawMessage
	if err := decode(w, r, &raw); err != nil {
		return err
	}
	var typ, name string
	if v, ok := raw["type"]; ok {
		_ = json.Unmarshal(v, &typ)
	}
	if v, ok := raw["name"]; ok {
		_ = json.Unmarshal(v, &name)
	}
	dt, ok := s.Types[typ]
	if !ok {
		names := make([]string, 0, len(s.Types))
		for k := range s.Types {
			names = append(names, k)
		}
		sort.Strings(names)
		return errorf(http.StatusBadRequest, CodeBadRequest, "type must be one of %s, got %q", strings.Join(names, ", "), typ)
	}
	for k := range raw {
		if k != "type" && k != "name" && k != typ {
			return errorf(http.StatusBadRequest, CodeBadRequest, "unknown field %q: settings for a %s directory go under %q", k, typ, typ)
		}
	}
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	if msg := EligibilityError(t); msg != "" {
		code := CodeSSORequired
		if t.SSOActive() {
			code = CodePlanRequired
		}
		return errorf(http.StatusConflict, code, "%s", msg)
	}
	settings := json.RawMessage("{}")
	if dt.Prepare != nil {
		var err error
		settings, err = dt.Prepare(r.Context(), raw[typ])
		if err != nil {
			return errorf(http.StatusBadRequest, CodeBadRequest, "%s settings: %v", typ, err)
		}
	}
	d := &store.Directory{ID: uuid.NewString(), TeamID: t.ID, Type: typ, Name: name, Settings: settings, State: store.StateOK}
	var token string
	if !dt.Polled {
		token = secret.NewToken(SCIMTokenPrefix)
		d.TokenHash = secret.Hash(token)
	} else {
		d.State = store.StateSyncing
	}
	if err := s.Store.WithTx(r.Context(), func(tx *store.Tx) error { return tx.CreateDirectory(r.Context(), d) }); err != nil {
		return internal(err)
	}
	s.changed() // the scheduler takes the new schedule now
	if dt.Polled && s.Queue != nil {
		if err := s.Queue.EnqueuePoll(r.Context(), d.ID); err != nil {
			s.log().Warn("enqueue first poll", "directory", d.ID, "err", err)
		}
	}
	out := s.directoryJSON(r, d, nil)
	if sc, ok := out["scim"].(map[string]any); ok && token != "" {
		sc["token"] = token
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) directoryJSON(r *http.Request, d *store.Directory, counts *store.DirectoryCounts) map[string]any {
	out := map[string]any{
		"id": d.ID, "team_id": d.TeamID, "type": d.Type, "name": d.Name, "state": d.State,
		"last_sync_at": d.LastSyncAt, "last_error": d.LastError, "cursor_kind": d.CursorKind,
		"created_at": d.CreatedAt,
	}
	if d.Cursor == nil && d.CursorKind == "" && s.Types[d.Type].Polled {
		out["cursor_kind"] = "none"
	}
	if len(d.Review) > 0 {
		out["review"] = d.Review
	} else {
		out["review"] = nil
	}
	if len(d.LastPoll) > 0 {
		out["last_poll"] = d.LastPoll
	} else if s.Types[d.Type].Polled {
		out["last_poll"] = nil
	}
	if dt, ok := s.Types[d.Type]; ok {
		if dt.Polled {
			if dt.Redact != nil {
				out[d.Type] = dt.Redact(d.Settings)
			}
		} else {
			sc := map[string]any{}
			if dt.Redact != nil {
				if m, ok := dt.Redact(d.Settings).(map[string]any); ok {
					sc = m
				}
			}
			sc["base_url"] = s.scimBaseURL(r, d.ID)
			out["scim"] = sc
		}
	}
	if counts != nil {
		out["counts"] = counts
		out["users"], out["groups"], out["members"] = counts.Users, counts.Groups, counts.Members
		out["pending_changes"] = counts.Pending
		// lag_seconds: how long the oldest change not yet applied has
		// waited; 0 when the roster is up to date.
		lag := 0.0
		if counts.OldestPending != nil {
			lag = max(0, time.Since(*counts.OldestPending).Seconds())
		}
		out["oldest_pending_at"], out["lag_seconds"] = counts.OldestPending, lag
	}
	return out
}

func (s *Server) directory(r *http.Request) (*store.Directory, *apiError) {
	d, err := s.Store.GetDirectory(r.Context(), r.PathValue("dir"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.TeamID != r.PathValue("team")) {
		return nil, errorf(http.StatusNotFound, CodeNotFound, "no directory %q in team %q", r.PathValue("dir"), r.PathValue("team"))
	}
	if err != nil {
		return nil, internal(err)
	}
	return d, nil
}

func (s *Server) getDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	c, err := s.Store.CountDirectory(r.Context(), d.ID)
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, s.directoryJSON(r, d, &c))
	return nil
}

func (s *Server) listDirectories(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	ds, err := s.Store.ListDirectories(r.Context(), t.ID)
	if err != nil {
		return internal(err)
	}
	out := make([]map[string]any, 0, len(ds))
	for _, d := range ds {
		out = append(out, s.directoryJSON(r, d, nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"directories": out})
	return nil
}

func (s *Server) syncDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	if !s.Types[d.Type].Polled {
		// A SCIM directory is pushed; "sync" reconciles it in full.
		err := s.Store.WithTx(r.Context(), func(tx *store.Tx) error {
			return tx.MarkDirty(r.Context(), d.ID, store.DirtyAll, "", timeNow())
		})
		if err != nil {
			return internal(err)
		}
		s.trigger(r.Context(), d.ID)
		writeJSON(w, http.StatusAccepted, map[string]any{"id": d.ID, "status": "reconcile queued"})
		return nil
	}
	if s.Queue != nil {
		if err := s.Queue.EnqueuePoll(r.Context(), d.ID); err != nil {
			return internal(err)
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": d.ID, "status": "poll queued"})
	return nil
}

func (s *Server) approveDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	err := poll.Approve(r.Context(), s.Store, d.ID)
	if errors.Is(err, poll.ErrNothingToApprove) {
		return errorf(http.StatusConflict, CodeConflict, "directory %s is in state %q: no removals are held for review, nothing to approve", d.ID, d.State)
	}
	if err != nil {
		return internal(err)
	}
	if !s.Types[d.Type].Polled {
		// SCIM: the held members are in the roster, pending removal; a
		// full reconcile sees the approval and removes them.
		err := s.Store.WithTx(r.Context(), func(tx *store.Tx) error {
			return tx.MarkDirty(r.Context(), d.ID, store.DirtyAll, "", timeNow())
		})
		if err != nil {
			return internal(err)
		}
		s.trigger(r.Context(), d.ID)
		writeJSON(w, http.StatusAccepted, map[string]any{"id": d.ID, "status": "approved; the held removals apply with the reconcile queued now"})
		return nil
	}
	if s.Queue != nil {
		if err := s.Queue.EnqueuePoll(r.Context(), d.ID); err != nil {
			return internal(err)
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": d.ID, "status": "approved; the held removals apply with the next poll, queued now"})
	return nil
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	limit, aerr := limitArg(r)
	if aerr != nil {
		return aerr
	}
	var before int64
	if v := r.URL.Query().Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeBadRequest, "cursor is not one this API gave out")
		}
		before = n
	}
	reqs, err := s.Store.ListSCIMRequests(r.Context(), d.ID, before, limit)
	if err != nil {
		return internal(err)
	}
	out := make([]map[string]any, 0, len(reqs))
	next := ""
	for _, q := range reqs {
		item := map[string]any{
			"id": strconv.FormatInt(q.ID, 10), "at": q.At, "method": q.Method, "path": q.Path, "status": q.Status,
			"duration_ms": float64(q.Duration.Microseconds()) / 1000, "error": q.Error,
		}
		if q.Body != "" {
			item["body"] = json.RawMessage(q.Body)
			if !json.Valid([]byte(q.Body)) {
				item["body"] = q.Body
			}
		}
		out = append(out, item)
		next = strconv.FormatInt(q.ID, 10)
	}
	if len(reqs) < limit {
		next = ""
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out, "next_cursor": next})
	return nil
}

func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	if s.Types[d.Type].Polled {
		return errorf(http.StatusConflict, CodeConflict, "directory %s is polled (%s); only SCIM directories have a token", d.ID, d.Type)
	}
	token := secret.NewToken(SCIMTokenPrefix)
	err := s.Store.WithTx(r.Context(), func(tx *store.Tx) error {
		cur, err := tx.GetDirectory(r.Context(), d.ID)
		if err != nil {
			return err
		}
		cur.TokenHash = secret.Hash(token)
		return tx.UpdateDirectory(r.Context(), cur)
	})
	if err != nil {
		return internal(err)
	}
	s.changed()
	writeJSON(w, http.StatusOK, map[string]any{"id": d.ID, "scim": map[string]any{"base_url": s.scimBaseURL(r, d.ID), "token": token}})
	return nil
}

// patchDirectory changes a directory's name or settings. Settings sit under
// the type's name, as on create; what is left out is kept, secrets
// included. A polled directory's new settings are tested against the
// source before they are stored, and the next poll lists everything (the
// old cursor may not fit the new scope).
func (s *Server) patchDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	var raw map[string]json.RawMessage
	if err := decode(w, r, &raw); err != nil {
		return err
	}
	dt := s.Types[d.Type]
	var name *string
	for k, v := range raw {
		switch k {
		case "name":
			var n string
			if err := json.Unmarshal(v, &n); err != nil {
				return errorf(http.StatusBadRequest, CodeBadRequest, "name must be a string")
			}
			name = &n
		case d.Type:
		case "type":
			var t string
			_ = json.Unmarshal(v, &t)
			if t != d.Type {
				return errorf(http.StatusBadRequest, CodeBadRequest, "a directory's type cannot change (it is %s); create a new directory instead", d.Type)
			}
		default:
			return errorf(http.StatusBadRequest, CodeBadRequest, "unknown field %q: settings for a %s directory go under %q", k, d.Type, d.Type)
		}
	}
	settings := d.Settings
	if patch, ok := raw[d.Type]; ok {
		if dt.Merge == nil {
			return errorf(http.StatusBadRequest, CodeBadRequest, "a %s directory has no settings to change", d.Type)
		}
		var err error
		settings, err = dt.Merge(r.Context(), d.Settings, patch)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeBadRequest, "%s settings: %v", d.Type, err)
		}
	}
	var updated *store.Directory
	err := s.Store.WithTx(r.Context(), func(tx *store.Tx) error {
		cur, err := tx.GetDirectory(r.Context(), d.ID)
		if err != nil {
			return err
		}
		if name != nil {
			cur.Name = *name
		}
		if _, ok := raw[d.Type]; ok {
			cur.Settings = settings
			if dt.Polled {
				cur.Cursor, cur.CursorKind, cur.LastFullAt = nil, "", nil
			} else if err := tx.MarkDirty(r.Context(), d.ID, store.DirtyAll, "", timeNow()); err != nil {
				// A SCIM directory's deletion guard changed: a full
				// reconcile applies removals it no longer holds.
				return err
			}
		}
		updated = cur
		return tx.UpdateDirectory(r.Context(), cur)
	})
	if err != nil {
		return internal(err)
	}
	s.changed()
	if _, ok := raw[d.Type]; ok && !dt.Polled {
		s.trigger(r.Context(), d.ID)
	}
	if _, ok := raw[d.Type]; ok && dt.Polled && s.Queue != nil {
		if err := s.Queue.EnqueuePoll(r.Context(), d.ID); err != nil {
			s.log().Warn("enqueue poll after settings change", "directory", d.ID, "err", err)
		}
	}
	c, err := s.Store.CountDirectory(r.Context(), d.ID)
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, s.directoryJSON(r, updated, &c))
	return nil
}

// deleteDirectory removes a directory: its members leave the roster with
// events, its SCIM token stops working at once (the SCIM server's cache is
// dropped), and its polls stop: the scheduler drops its schedule at its
// next look at the directory list, and a poll or reconcile already queued
// finds no directory and does nothing.
func (s *Server) deleteDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	if _, err := reconcile.RemoveDirectory(r.Context(), s.Store, d.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, CodeNotFound, "no directory %q in team %q", d.ID, d.TeamID)
		}
		return internal(err)
	}
	s.changed()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// previewDirectory lists what the next poll would change, without applying
// it.
func (s *Server) previewDirectory(w http.ResponseWriter, r *http.Request) *apiError {
	d, aerr := s.directory(r)
	if aerr != nil {
		return aerr
	}
	if !s.Types[d.Type].Polled {
		return errorf(http.StatusConflict, CodeConflict, "directory %s is a SCIM directory: the identity provider pushes its changes, there is no poll to preview", d.ID)
	}
	if s.Preview == nil {
		return errorf(http.StatusNotImplemented, CodeNotImplemented, "preview is not available in this process")
	}
	ctx, cancel := context.WithTimeout(r.Context(), previewTimeout)
	defer cancel()
	out, err := s.Preview.Preview(ctx, d.ID)
	if err != nil {
		return errorf(http.StatusBadGateway, CodeSourceFailed, "preview: the source could not be listed: %v", err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// previewTimeout bounds a preview, which lists the whole source while the
// admin waits.
const previewTimeout = 2 * time.Minute

// listTeams lists every team, for the operator.
func (s *Server) listTeams(w http.ResponseWriter, r *http.Request) *apiError {
	ts, err := s.Store.ListTeams(r.Context())
	if err != nil {
		return internal(err)
	}
	out := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, teamJSON(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"teams": out})
	return nil
}

var timeNow = time.Now
