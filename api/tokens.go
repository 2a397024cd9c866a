package api

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/store"
)

const maxTokenName = 200

// createTeamToken makes a team admin token. The operator and the team's own
// tokens may; the token is shown only in this answer.
func (s *Server) createTeamToken(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	var body struct {
		Name string `json:"name"`
	}
	if aerr := decode(w, r, &body); aerr != nil {
		return aerr
	}
	name := strings.TrimSpace(body.Name)
	if name == "" || utf8.RuneCountInString(name) > maxTokenName {
		return errorf(http.StatusBadRequest, CodeBadRequest, "name is required (at most %d characters): say who or what uses the token", maxTokenName)
	}
	token := secret.NewToken(TeamTokenPrefix)
	at := &store.AdminToken{ID: uuid.NewString(), TeamID: t.ID, Name: name, Hash: secret.Hash(token)}
	if err := s.Store.CreateTeamToken(r.Context(), at); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return noTeam(t.ID)
		}
		return internal(err)
	}
	s.forgetTokens() // usable at once on this process
	s.log().Info("team admin token created", "team", t.ID, "token_id", at.ID, "name", name)
	writeJSON(w, http.StatusCreated, map[string]any{"id": at.ID, "name": at.Name, "token": token, "created_at": at.CreatedAt})
	return nil
}

func (s *Server) listTeamTokens(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	toks, err := s.Store.ListTeamTokens(r.Context(), t.ID)
	if err != nil {
		return internal(err)
	}
	out := make([]map[string]any, 0, len(toks))
	for _, tk := range toks {
		j := map[string]any{"id": tk.ID, "name": tk.Name, "created_at": tk.CreatedAt}
		if tk.LastUsedAt != nil {
			j["last_used_at"] = *tk.LastUsedAt
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// deleteTeamToken deletes a team token; it stops working on this process at
// once and on other replicas within tokenTTL. A team token cannot delete
// itself: that would sign its holder out for good, with nothing left to
// undo it; another token of the team, or the operator's, can.
func (s *Server) deleteTeamToken(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	id := r.PathValue("id")
	if p, _ := PrincipalFrom(r.Context()); p.TokenID != "" && p.TokenID == id {
		return errorf(http.StatusConflict, CodeConflict, "this request is signed in with that token; delete it with another admin token of the team or the operator's")
	}
	err := s.Store.DeleteTeamToken(r.Context(), t.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no admin token %q in this team", id)
	}
	if err != nil {
		return internal(err)
	}
	s.forgetTokens()
	s.log().Info("team admin token deleted", "team", t.ID, "token_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
