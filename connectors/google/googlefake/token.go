package googlefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"time"
)

const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// KeyJSON writes a service account key file as the Google Cloud console
// gives it (type, project_id, private_key_id, private_key as PKCS #8 PEM,
// client_email, client_id, auth_uri, token_uri, ...).
func KeyJSON(clientEmail, clientID, keyID string, key *rsa.PrivateKey, tokenURI string) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("googlefake: marshal key: " + err.Error())
	}
	project := "roster-test"
	if at := strings.IndexByte(clientEmail, '@'); at > 0 {
		if rest := clientEmail[at+1:]; strings.Contains(rest, ".iam.") {
			project = rest[:strings.Index(rest, ".iam.")]
		}
	}
	b, _ := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              keyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                clientEmail,
		"client_id":                   clientID,
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + clientEmail,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	return string(b)
}

func tokenError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// claims are the JWT claims a service account assertion carries.
type claims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// handleToken is the OAuth 2.0 token endpoint's jwt-bearer grant
// (RFC 7523 §2.1) as Google runs it for service accounts.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[EndpointToken]++
	if f := s.takeFault(EndpointToken, 0, ""); f != nil && writeFault(w, f) {
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "Could not parse the request body.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != jwtBearer {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: not a signed JWT.")
		return
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var cl claims
	if !decodeSegment(parts[0], &hdr) || !decodeSegment(parts[1], &cl) {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: could not decode the header or claims.")
		return
	}
	sa := s.accounts[cl.Iss]
	if sa == nil {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid grant: account not found")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || hdr.Alg != "RS256" || rsa.VerifyPKCS1v15(sa.pub, crypto.SHA256, sum[:], sig) != nil {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	if cl.Aud != s.TokenURL {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed audience check. The right audience is "+s.TokenURL)
		return
	}
	now := s.now().Unix()
	const skew = 300
	if cl.Exp <= now-skew || cl.Iat > now+skew || cl.Exp <= cl.Iat || cl.Exp-cl.Iat > 3600 {
		tokenError(w, http.StatusBadRequest, "invalid_grant",
			"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	}
	scopes := strings.Fields(cl.Scope)
	if len(scopes) == 0 {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "Empty or missing scope not allowed.")
		return
	}
	sub := strings.ToLower(cl.Sub)
	if sub != "" {
		if s.findUser(sub) == nil {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid email or User ID")
			return
		}
		for _, sc := range scopes {
			if !s.delegated[sa.clientID][sc] {
				tokenError(w, http.StatusUnauthorized, "unauthorized_client",
					"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
				return
			}
		}
	} else {
		sub = sa.email // the service account acting as itself: no admin privileges
	}
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	access := "ya29.fake-" + hex.EncodeToString(buf)
	granted := map[string]bool{}
	for _, sc := range scopes {
		granted[sc] = true
	}
	s.tokens[access] = accessToken{sub: sub, scopes: granted, exp: s.now().Add(time.Hour)}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "expires_in": 3599, "token_type": "Bearer"})
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	return err == nil && json.Unmarshal(b, v) == nil
}
