package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/roster-dev/roster/internal/dirstatus"
)

// operatorDirectories answers GET /api/v1/directories: every team's
// directories as `roster status --json` prints them, filtered by state,
// type, team (id or name) and problems=true. It is how a page from an
// aggregate alert finds the directory behind it. Operator only: like
// GET /teams, it crosses teams.
func (s *Server) operatorDirectories(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	f := dirstatus.Filter{Team: q.Get("team"), State: q.Get("state"), Type: q.Get("type")}
	if f.State != "" && !slices.Contains(dirstatus.States, f.State) {
		return errorf(http.StatusBadRequest, CodeBadRequest, "state must be one of %s, got %q", strings.Join(dirstatus.States, ", "), f.State)
	}
	switch q.Get("problems") {
	case "", "false", "0":
	case "true", "1":
		f.Problems = true
	default:
		return errorf(http.StatusBadRequest, CodeBadRequest, "problems must be true or false, got %q", q.Get("problems"))
	}
	rows, err := dirstatus.List(r.Context(), s.Store, f, timeNow())
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"directories": rows})
	return nil
}
