package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
)

// live serves GET /teams/{team}/live: the team's event stream as the API
// serves it (GET /api/v1/teams/{team}/events/stream), in-process as the
// session's principal, so resuming, limits and authorization stay the
// API's. It starts after ?after= (the newest event when the page was
// rendered) and resumes from Last-Event-ID.
func (h *Handler) live(w http.ResponseWriter, r *http.Request) {
	s, err := h.loadSession(r)
	if errors.Is(err, errNoSession) {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	if err != nil {
		h.log().Error("web live", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	path := "/teams/" + url.PathEscape(r.PathValue("team")) + "/events/stream"
	if a := r.URL.Query().Get("after"); a != "" {
		path += "?after=" + url.QueryEscape(a)
	}
	req, err := apiRequest(r, "GET", path, nil)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		req.Header.Set("Last-Event-ID", id)
	}
	h.backend.ServeAs(s.Principal, &unnamedEvents{ResponseWriter: w}, req)
}

// unnamedEvents drops the stream's "event:" lines, so every event reaches
// the page's EventSource as a plain message (the type is in the data).
// The API writes whole events in each Write.
type unnamedEvents struct {
	http.ResponseWriter
}

func (u *unnamedEvents) Write(b []byte) (int, error) {
	if !bytes.Contains(b, []byte("event: ")) {
		return u.ResponseWriter.Write(b)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	out := make([]byte, 0, len(b))
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte("event: ")) {
			continue
		}
		out = append(out, l...)
	}
	if _, err := u.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Unwrap lets http.ResponseController flush and set deadlines.
func (u *unnamedEvents) Unwrap() http.ResponseWriter { return u.ResponseWriter }
