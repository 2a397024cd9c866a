package msgraphfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clockSkew is how far an assertion's times may be off, as Entra allows.
const clockSkew = 5 * time.Minute

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts[EndpointToken]++
	s.mu.Unlock()
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if r.Method != http.MethodPost {
		s.aadError(w, http.StatusBadRequest, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a "+r.Method+" request.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must be form-encoded.")
		return
	}
	f := r.PostForm
	if tenant != s.TenantID {
		s.aadError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		s.aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	clientID := f.Get("client_id")
	if clientID == "" {
		s.aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	if clientID != s.ClientID {
		s.aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clientID, tenant))
		return
	}
	scope := f.Get("scope")
	resource, isDefault := strings.CutSuffix(scope, "/.default")
	if !isDefault {
		s.aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	}
	if resource != s.URL {
		s.aadError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", resource, tenant))
		return
	}

	s.mu.Lock()
	secret, certs := s.secret, append([]*x509.Certificate(nil), s.certs...)
	s.mu.Unlock()
	switch {
	case f.Get("client_assertion") != "":
		if f.Get("client_assertion_type") != assertionType {
			s.aadError(w, http.StatusBadRequest, "invalid_request", 50027, "client_assertion_type must be "+assertionType+".")
			return
		}
		s.mu.Lock()
		s.lastAssertion = f.Get("client_assertion")
		s.mu.Unlock()
		if status, code, num, msg := s.checkAssertion(f.Get("client_assertion"), clientID, certs); status != 0 {
			s.aadError(w, status, code, num, msg)
			return
		}
	case f.Get("client_secret") != "":
		if secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(f.Get("client_secret"))) != 1 {
			s.aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID))
			return
		}
	default:
		s.aadError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	tok := "fake." + NewID()
	life := s.opts.TokenLifetime
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(life)
	s.mu.Unlock()
	secs := int(life / time.Second)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// checkAssertion verifies a client assertion; status 0 means good.
func (s *Server) checkAssertion(jwt, clientID string, certs []*x509.Certificate) (status int, code string, num int, msg string) {
	bad := func(num int, msg string) (int, string, int, string) {
		return http.StatusUnauthorized, "invalid_client", num, msg
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed."
	}
	var hdr struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud any    `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Exp *int64 `json:"exp"`
		Nbf *int64 `json:"nbf"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(cb, &claims) != nil {
		return http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed."
	}
	if hdr.Alg != "RS256" && hdr.Alg != "PS256" {
		return bad(700027, fmt.Sprintf("Client assertion failed signature validation. (Reason - the algorithm '%s' is not supported.)", hdr.Alg))
	}
	var cert *x509.Certificate
	for _, c := range certs {
		s256 := sha256.Sum256(c.Raw)
		s1 := sha1.Sum(c.Raw)
		if (hdr.X5tS256 != "" && hdr.X5tS256 == base64.RawURLEncoding.EncodeToString(s256[:])) ||
			(hdr.X5tS256 == "" && hdr.X5t != "" && hdr.X5t == base64.RawURLEncoding.EncodeToString(s1[:])) {
			cert = c
			break
		}
	}
	if cert == nil {
		thumb := hdr.X5tS256
		if thumb == "" {
			thumb = hdr.X5t
		}
		raw, _ := base64.RawURLEncoding.DecodeString(thumb)
		return bad(700027, fmt.Sprintf("Client assertion failed signature validation. (Reason - The key was not found., Thumbprint of key used by client: '%s'. Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.)", strings.ToUpper(hex.EncodeToString(raw)), clientID))
	}
	pub, isRSA := cert.PublicKey.(*rsa.PublicKey)
	if !isRSA {
		return bad(700027, "Client assertion failed signature validation. (Reason - the registered key is not an RSA key.)")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var verr error
	if hdr.Alg == "RS256" {
		verr = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	} else {
		verr = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil)
	}
	if verr != nil {
		return bad(700027, "Client assertion failed signature validation.")
	}
	audOK := false
	switch a := claims.Aud.(type) {
	case string:
		audOK = a == s.TokenURL
	case []any:
		for _, v := range a {
			if v == s.TokenURL {
				audOK = true
			}
		}
	}
	if !audOK {
		return bad(700027, fmt.Sprintf("Client assertion contains an invalid audience claim; it must be the token endpoint %s.", s.TokenURL))
	}
	if claims.Iss != clientID || claims.Sub != clientID {
		return bad(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.")
	}
	if claims.Jti == "" {
		return http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed: the jti claim is missing."
	}
	now := time.Now()
	if claims.Exp == nil || now.After(time.Unix(*claims.Exp, 0).Add(clockSkew)) || (claims.Nbf != nil && now.Add(clockSkew).Before(time.Unix(*claims.Nbf, 0))) {
		return bad(700024, "Client assertion is not within its valid time range. Current time: "+now.UTC().Format(time.RFC3339)+".")
	}
	return 0, "", 0, ""
}

func (s *Server) aadError(w http.ResponseWriter, status int, code string, num int, msg string) {
	now := time.Now().UTC()
	trace, corr := NewID(), NewID()
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", num, msg, trace, corr, now.Format("2006-01-02 15:04:05Z"))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": desc,
		"error_codes":       []int{num},
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         s.LoginURL + "/error?code=" + strconv.Itoa(num),
	})
}

// NewCertificate makes a self-signed RSA certificate and its key, as an
// admin would upload to an app registration, in PEM.
func NewCertificate(commonName string) (certPEM, keyPEM string, cert *x509.Certificate, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return "", "", nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, fmt.Errorf("create certificate: %w", err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		return "", "", nil, fmt.Errorf("parse certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, fmt.Errorf("marshal key: %w", err)
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certPEM, keyPEM, cert, nil
}
