package oktafake

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// token serves POST /oauth2/v1/token: the client credentials grant of the
// org authorization server, authenticated by a private_key_jwt assertion.
func (s *Server) token(w http.ResponseWriter, r *http.Request, now time.Time) {
	if r.Method != http.MethodPost {
		oauthErr(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint takes POST.")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "The request body could not be parsed.")
		return
	}
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].")
		return
	}
	if f.Get("client_secret") != "" || r.Header.Get("Authorization") != "" {
		oauthErr(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed: this service app authenticates with private_key_jwt only.")
		return
	}
	if f.Get("client_assertion_type") != assertionType || f.Get("client_assertion") == "" {
		oauthErr(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed. Either the client or the client credentials are invalid.")
		return
	}
	c, desc := s.verifyAssertion(f.Get("client_assertion"), f.Get("client_id"), now)
	if c == nil {
		oauthErr(w, http.StatusUnauthorized, "invalid_client", desc)
		return
	}
	if c.RequireDPoP && r.Header.Get("DPoP") == "" {
		oauthErr(w, http.StatusBadRequest, "invalid_dpop_proof", "The DPoP proof JWT header is missing.")
		return
	}
	requested := strings.Fields(f.Get("scope"))
	if len(requested) == 0 {
		oauthErr(w, http.StatusBadRequest, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
		return
	}
	granted := map[string]bool{}
	for _, sc := range c.Scopes {
		granted[sc] = true
	}
	var missing []string
	for _, sc := range requested {
		if !granted[sc] {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		oauthErr(w, http.StatusBadRequest, "invalid_scope", "The following scopes are not allowed: "+strings.Join(missing, ", "))
		return
	}
	tok := randHex(24)
	scopes := map[string]bool{}
	for _, sc := range requested {
		scopes[sc] = true
	}
	s.accessTokens[tok] = &accessToken{client: c.ClientID, scopes: scopes, expires: now.Add(time.Hour)}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": tok, "scope": strings.Join(requested, " ")})
}

// verifyAssertion checks a client assertion; on failure it returns nil and
// the reason.
func (s *Server) verifyAssertion(jwt, clientID string, now time.Time) (*ServiceApp, string) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, "The client_assertion token is malformed."
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *float64        `json:"exp"`
		Iat *float64        `json:"iat"`
		Nbf *float64        `json:"nbf"`
		Jti string          `json:"jti"`
	}
	if !decodeSegment(parts[0], &hdr) || !decodeSegment(parts[1], &claims) {
		return nil, "The client_assertion token is malformed."
	}
	if hdr.Alg != "RS256" {
		return nil, "The client_assertion token has an unsupported signing algorithm: " + hdr.Alg
	}
	c, ok := s.clients[claims.Iss]
	if !ok {
		return nil, "Invalid value for 'client_id' parameter."
	}
	if clientID != "" && clientID != claims.Iss {
		return nil, "The client_id parameter does not match the client_assertion issuer."
	}
	if claims.Sub != claims.Iss {
		return nil, "The client_assertion sub claim must be the client_id."
	}
	if !audienceIs(claims.Aud, s.TokenURL) {
		return nil, "The audience claim for client_assertion must be the endpoint invoked for the request."
	}
	if claims.Exp == nil {
		return nil, "The client_assertion token must have an expiration time."
	}
	exp := time.Unix(int64(*claims.Exp), 0)
	if !now.Before(exp) {
		return nil, "The client_assertion token is expired."
	}
	if exp.After(now.Add(time.Hour + time.Minute)) {
		return nil, "The client_assertion token has an expiration too far into the future."
	}
	if claims.Nbf != nil && now.Before(time.Unix(int64(*claims.Nbf), 0).Add(-time.Minute)) {
		return nil, "The client_assertion token is not valid yet."
	}
	signed := parts[0] + "." + parts[1]
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, "The client_assertion signature is invalid."
	}
	sum := sha256.Sum256([]byte(signed))
	verified := false
	for _, k := range c.JWKS {
		if hdr.Kid != "" && k.Kid != "" && k.Kid != hdr.Kid {
			continue
		}
		pub, err := k.rsa()
		if err != nil {
			continue
		}
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, "The client_assertion signature is invalid."
	}
	if claims.Jti != "" {
		if s.usedJTI[claims.Jti] {
			return nil, "The client_assertion token has already been used."
		}
		s.usedJTI[claims.Jti] = true
	}
	return c, ""
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func audienceIs(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
