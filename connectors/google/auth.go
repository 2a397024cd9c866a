package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/roster-dev/roster/connectors/internal/apiclient"
)

// token returns a valid access token, fetching one with a signed JWT
// assertion (RFC 7523) when the cached one is missing or about to expire.
// Fetches are serialised: the first caller fetches, the others wait and reuse.
func (s *Source) token(ctx context.Context) (*oauth2.Token, error) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if s.tok.Valid() {
		return s.tok, nil
	}
	// x/oauth2/jwt posts with the client it finds in the context and no
	// context of its own, so the transport carries ctx: the fetch goes
	// through apiclient (retries, counts) and ends with the poll.
	hc := &http.Client{Transport: apiclient.Transport{Client: s.tokc}}
	t, err := s.jwt.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc)).Token()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.tokenError(err)
	}
	s.tok = t
	return t, nil
}

// dropToken forgets the cached token if it is still tok, so the next
// request fetches a fresh one.
func (s *Source) dropToken(tok *oauth2.Token) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	if s.tok == tok {
		s.tok = nil
	}
}

// tokenError turns a refused token request into an error that names the
// fix. Google's token endpoint answers {"error", "error_description"}.
func (s *Source) tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("google token: %w", err)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(re.Body, &body)
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	said := strings.TrimSuffix(strings.TrimSpace(body.Error+": "+body.Description), ".")
	if body.Error == "" {
		said = fmt.Sprintf("HTTP %d", status)
	}
	var fix string
	desc := strings.ToLower(body.Description)
	switch {
	case body.Error == "unauthorized_client":
		fix = fmt.Sprintf("delegate the scopes %s to the service account's client ID %s in the Admin console "+
			"(Security → Access and data control → API controls → Manage domain-wide delegation)",
			strings.Join(Scopes, ","), s.clientIDText())
	case body.Error == "invalid_grant" && strings.Contains(desc, "signature"):
		fix = fmt.Sprintf("the key was refused: it was deleted, or the file was changed; create a new JSON key for %s and paste it into service_account_json", s.key.ClientEmail)
	case body.Error == "invalid_grant" && (strings.Contains(desc, "email") || strings.Contains(desc, "user id")):
		fix = fmt.Sprintf("admin_email %q is not a user of the account; give the primary email of an existing admin", s.cfg.AdminEmail)
	case body.Error == "invalid_grant" && strings.Contains(desc, "account not found"):
		fix = fmt.Sprintf("the service account %s does not exist or is disabled; use a key of an existing, enabled service account", s.key.ClientEmail)
	case body.Error == "invalid_grant" && (strings.Contains(desc, "iat") || strings.Contains(desc, "short-lived")):
		fix = "this host's clock is off; synchronise it (NTP)"
	case body.Error == "invalid_grant" && strings.Contains(desc, "audience"):
		fix = "token_url (or the key file's token_uri) is not Google's token endpoint; leave token_url empty"
	case body.Error == "access_denied" || body.Error == "admin_policy_enforced":
		fix = "an Admin console policy blocks this service account; allow its client ID under Security → Access and data control → API controls"
	default:
		fix = "check service_account_json and admin_email"
	}
	return &AuthError{Status: status, Said: said, Fix: fix}
}

func (s *Source) clientIDText() string {
	if s.key.ClientID != "" {
		return s.key.ClientID
	}
	return "(client_id of the key file)"
}

// AuthError is a token request Google refused.
type AuthError struct {
	Status int
	Said   string // what Google answered
	Fix    string // what the admin should do
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("google token: %s; %s", e.Said, e.Fix)
}
