package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/roster-dev/roster/store"
)

// scimError is an error in the SCIM error shape.
type scimError struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *scimError) Error() string { return e.Detail }

func errf(status int, scimType, format string, args ...any) *scimError {
	return &scimError{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// writeErr answers with a SCIM error.
func writeErr(w http.ResponseWriter, e *scimError) { writeSCIM(w, e.Status, errBody(e)) }

// errBody is a SCIM error message (RFC 7644 §3.12), as an answer or as a
// Bulk operation's response.
func errBody(e *scimError) map[string]any {
	b := map[string]any{"schemas": []string{URNError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.ScimType != "" {
		b["scimType"] = e.ScimType
	}
	return b
}

func storeErr(err error, what string) *scimError {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errf(http.StatusNotFound, "", "%s not found", what)
	case errors.Is(err, store.ErrConflict):
		return errf(http.StatusConflict, "uniqueness", "%s: %v", what, err)
	}
	var se *scimError
	if errors.As(err, &se) {
		return se
	}
	return errf(http.StatusInternalServerError, "", "internal error: %v", err)
}

// txErr carries a SCIM error out of a store transaction (rolling it back).
type txErr struct{ e *scimError }

func (t txErr) Error() string { return t.e.Detail }

func fromTx(err error, what string) *scimError {
	var te txErr
	if errors.As(err, &te) {
		return te.e
	}
	return storeErr(err, what)
}
