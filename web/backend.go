package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Principal is who a session acts as: the operator (every team) or one
// team's admin token.
type Principal struct {
	Operator bool   `json:"operator,omitempty"`
	TeamID   string `json:"team_id,omitempty"`
	// TokenID names the admin token signed in with; deleting the token ends
	// the session.
	TokenID string `json:"token_id"`
	Name    string `json:"name,omitempty"`
}

// ErrBadToken is Authenticate's answer to a token that is not an admin
// token.
var ErrBadToken = errors.New("the admin token is not valid")

// Backend is how the page reaches the admin API: every read and write goes
// through it as the session's principal, so authorization lives in the API
// alone.
type Backend interface {
	// Authenticate resolves an admin token to its principal, or ErrBadToken.
	Authenticate(ctx context.Context, token string) (Principal, error)
	// Valid reports whether the principal's token still exists.
	Valid(ctx context.Context, p Principal) (bool, error)
	// ServeAs serves an admin API request (path under /api/v1) in-process
	// as the principal.
	ServeAs(p Principal, w http.ResponseWriter, r *http.Request)
}

// apiError is the admin API's error body.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// recorder is the in-process ResponseWriter of an API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}

// apiRequest builds an in-process request to the admin API from the page's
// request r, keeping what the API reads of it (host and scheme, for SCIM
// base URLs).
func apiRequest(r *http.Request, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, "/api/v1"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Host, req.TLS, req.RemoteAddr = r.Host, r.TLS, r.RemoteAddr
	if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
		req.Header.Set("X-Forwarded-Proto", v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call sends one admin API request as p and decodes a 2xx answer into out
// (when not nil). Any other answer is an *apiError.
func (h *Handler) call(r *http.Request, p Principal, method, path string, body, out any) error {
	req, err := apiRequest(r, method, path, body)
	if err != nil {
		return err
	}
	rec := &recorder{header: http.Header{}}
	h.backend.ServeAs(p, rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status < 200 || rec.status > 299 {
		var e struct {
			Error apiError `json:"error"`
		}
		if err := json.Unmarshal(rec.body.Bytes(), &e); err != nil || e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(rec.body.String())
		}
		e.Error.Status = rec.status
		return &e.Error
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// statusOf is the API status behind err, or 500.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

// messageOf is what the admin sees of err: the API's message, or a generic
// line for anything else (logged by the caller).
func messageOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "something went wrong on the server; see its log"
}
