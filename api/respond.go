// Package api serves roster's admin API under /api/v1: teams, SSO status,
// directories, the roster (read-only), spend limits and the event feed.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Error codes of the admin API.
const (
	CodeBadRequest   = "invalid_request"
	CodeUnauthorized = "unauthorized"
	CodeNotFound     = "not_found"
	CodeForbidden    = "forbidden"
	CodeConflict     = "conflict"
	CodeSSORequired  = "sso_required"
	CodePlanRequired = "plan_required"
	CodeManaged      = "managed_by_identity_provider"
	CodeTooLarge     = "request_too_large"
	CodeInternal     = "internal"
	CodeMethod       = "method_not_allowed"
	// CodeSourceFailed: the directory source could not be reached or listed.
	CodeSourceFailed = "source_failed"
	// CodeNotImplemented: this process cannot do that.
	CodeNotImplemented = "not_implemented"
	// CodeUnavailable: the server is at a limit; retry later.
	CodeUnavailable = "unavailable"
)

type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err *apiError) {
	writeJSON(w, err.Status, map[string]any{"error": map[string]string{"code": err.Code, "message": err.Message}})
}

// maxBody is the largest admin API request body accepted.
const maxBody = 1 << 20

// decode reads a JSON body strictly: unknown fields are errors, so typos
// don't pass silently.
func decode(w http.ResponseWriter, r *http.Request, v any) *apiError {
	// The body is read as JSON whatever the Content-Type says: curl -d
	// sends form-encoded headers with JSON bodies, and a parse error says
	// what is wrong better than a 415 would.
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than %d bytes", maxBody)
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, CodeBadRequest, "request body is empty; send a JSON object")
		default:
			return errorf(http.StatusBadRequest, CodeBadRequest, "invalid JSON body: %v", err)
		}
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, CodeBadRequest, "invalid JSON body: more than one JSON value")
	}
	return nil
}

// optionalCents decodes {"per_user_cents": int or null}, telling absent from null.
type limitBody struct {
	PerUserCents json.RawMessage `json:"per_user_cents"`
	Unlimited    *bool           `json:"unlimited,omitempty"`
}

// parse returns (set, cents): set false when the field was absent.
func (b limitBody) parse() (present bool, cents *int64, err *apiError) {
	if len(b.PerUserCents) == 0 {
		return false, nil, nil
	}
	if string(b.PerUserCents) == "null" {
		return true, nil, nil
	}
	var v int64
	if e := json.Unmarshal(b.PerUserCents, &v); e != nil {
		return false, nil, errorf(http.StatusBadRequest, CodeBadRequest, "per_user_cents must be a whole number of cents or null, got %s", string(b.PerUserCents))
	}
	if v < 0 {
		return false, nil, errorf(http.StatusBadRequest, CodeBadRequest, "per_user_cents must not be negative, got %d", v)
	}
	return true, &v, nil
}
