package msgraphfake_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors/msgraph/msgraphfake"
)

func keyOf(t *testing.T, keyPEM string) *rsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode([]byte(keyPEM))
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func sign(t *testing.T, hdr, claims map[string]any, key *rsa.PrivateKey) string {
	t.Helper()
	hb, _ := json.Marshal(hdr)
	cb, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

type tokenAnswer struct {
	status int
	Error  string `json:"error"`
	Desc   string `json:"error_description"`
	Codes  []int  `json:"error_codes"`
	Token  string `json:"access_token"`
}

func postToken(t *testing.T, tokenURL string, form url.Values) tokenAnswer {
	t.Helper()
	resp, err := http.PostForm(tokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	a.status = resp.StatusCode
	return a
}

func TestTokenEndpointChecksTheAssertion(t *testing.T) {
	_, keyPEM, cert, err := msgraphfake.NewCertificate("registered")
	if err != nil {
		t.Fatal(err)
	}
	_, otherPEM, _, err := msgraphfake.NewCertificate("other")
	if err != nil {
		t.Fatal(err)
	}
	srv := msgraphfake.New(msgraphfake.Options{Certificates: []*x509.Certificate{cert}})
	defer srv.Close()
	thumb := sha256.Sum256(cert.Raw)
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(thumb[:])}
	claims := func(edit func(map[string]any)) map[string]any {
		now := time.Now().Unix()
		c := map[string]any{"aud": srv.TokenURL, "iss": srv.ClientID, "sub": srv.ClientID, "jti": "j1", "nbf": now, "exp": now + 600}
		if edit != nil {
			edit(c)
		}
		return c
	}
	form := func(assertion string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "scope": {srv.URL + "/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	}
	for _, tc := range []struct {
		name      string
		assertion string
		status    int
		code      int
	}{
		{"good", sign(t, hdr, claims(nil), keyOf(t, keyPEM)), 200, 0},
		{"wrongly signed", sign(t, hdr, claims(nil), keyOf(t, otherPEM)), 401, 700027},
		{"unregistered thumbprint", sign(t, map[string]any{"alg": "RS256", "x5t#S256": "AAAA"}, claims(nil), keyOf(t, keyPEM)), 401, 700027},
		{"wrong audience", sign(t, hdr, claims(func(c map[string]any) { c["aud"] = "https://login.example.com/token" }), keyOf(t, keyPEM)), 401, 700027},
		{"another issuer", sign(t, hdr, claims(func(c map[string]any) { c["iss"] = "someone-else" }), keyOf(t, keyPEM)), 401, 700021},
		{"expired", sign(t, hdr, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), keyOf(t, keyPEM)), 401, 700024},
		{"no jti", sign(t, hdr, claims(func(c map[string]any) { delete(c, "jti") }), keyOf(t, keyPEM)), 400, 50027},
		{"not a JWT", "abc", 400, 50027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := postToken(t, srv.TokenURL, form(tc.assertion))
			if a.status != tc.status {
				t.Fatalf("status %d (%+v), want %d", a.status, a, tc.status)
			}
			if tc.code == 0 {
				if a.Token == "" {
					t.Fatal("no access token")
				}
				return
			}
			if len(a.Codes) != 1 || a.Codes[0] != tc.code || !strings.HasPrefix(a.Desc, fmt.Sprintf("AADSTS%d:", tc.code)) || a.Error == "" {
				t.Fatalf("answer %+v, want AADSTS%d", a, tc.code)
			}
		})
	}
}

func TestTokenEndpointChecksTheGrant(t *testing.T) {
	srv := msgraphfake.New(msgraphfake.Options{ClientSecret: "right"})
	defer srv.Close()
	base := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {"right"}, "scope": {srv.URL + "/.default"}}
	}
	for _, tc := range []struct {
		name   string
		url    string
		edit   func(url.Values)
		status int
		code   int
	}{
		{"good", srv.TokenURL, nil, 200, 0},
		{"wrong secret", srv.TokenURL, func(v url.Values) { v.Set("client_secret", "wrong") }, 401, 7000215},
		{"no credential", srv.TokenURL, func(v url.Values) { v.Del("client_secret") }, 401, 7000218},
		{"unknown client", srv.TokenURL, func(v url.Values) { v.Set("client_id", "x") }, 400, 700016},
		{"scope without .default", srv.TokenURL, func(v url.Values) { v.Set("scope", srv.URL+"/User.Read.All") }, 400, 1002012},
		{"another resource", srv.TokenURL, func(v url.Values) { v.Set("scope", "https://graph.example.com/.default") }, 400, 500011},
		{"another grant", srv.TokenURL, func(v url.Values) { v.Set("grant_type", "password") }, 400, 70003},
		{"unknown tenant", srv.LoginURL + "/contoso.example/oauth2/v2.0/token", nil, 400, 90002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := base()
			if tc.edit != nil {
				tc.edit(v)
			}
			a := postToken(t, tc.url, v)
			if a.status != tc.status || (tc.code != 0 && (len(a.Codes) == 0 || a.Codes[0] != tc.code)) {
				t.Fatalf("answer %d %+v, want %d AADSTS%d", a.status, a, tc.status, tc.code)
			}
		})
	}
}

// graphGet sends an authorised request to the fake and decodes the answer.
func graphGet(t *testing.T, srv *msgraphfake.Server, method, u string, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	a := postToken(t, srv.TokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {"s"}, "scope": {srv.URL + "/.default"}})
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestGraphShapes(t *testing.T) {
	srv := msgraphfake.New(msgraphfake.Options{ClientSecret: "s", PageSize: 3, MembersPerFragment: 2})
	defer srv.Close()
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, srv.AddUser(msgraphfake.User{DisplayName: fmt.Sprint("u", i), Mail: fmt.Sprint("u", i, "@x.com"), AccountEnabled: true}))
	}
	g, _ := srv.AddGroup(msgraphfake.Group{DisplayName: "G"}, ids...)
	v1 := srv.URL + "/v1.0"

	// members@delta split over entries repeating the group id.
	status, out := graphGet(t, srv, "GET", v1+"/groups/delta?$select=displayName,members", "", nil)
	entries, members := 0, 0
	for status == 200 {
		for _, e := range out["value"].([]any) {
			m := e.(map[string]any)
			if m["id"] == g {
				entries++
				members += len(m["members@delta"].([]any))
			}
		}
		next, _ := out["@odata.nextLink"].(string)
		if next == "" {
			if out["@odata.deltaLink"] == nil {
				t.Fatal("last page without a deltaLink")
			}
			break
		}
		status, out = graphGet(t, srv, "GET", next, "", nil)
	}
	if entries != 4 || members != 7 {
		t.Errorf("group entries %d with %d members, want 4 fragments holding 7", entries, members)
	}

	// Sync from now: a deltaLink and no data.
	_, out = graphGet(t, srv, "GET", v1+"/users/delta?$select=id&$deltatoken=latest", "", nil)
	if len(out["value"].([]any)) != 0 || out["@odata.deltaLink"] == nil {
		t.Errorf("latest = %v", out)
	}

	// Default user properties hold no accountEnabled; $select is checked.
	_, out = graphGet(t, srv, "GET", v1+"/users/"+ids[0], "", nil)
	if _, has := out["accountEnabled"]; has || out["mail"] != "u0@x.com" {
		t.Errorf("default user = %v", out)
	}
	if status, out := graphGet(t, srv, "GET", v1+"/users/delta?$select=nope", "", nil); status != 400 || errCode(out) != "Request_BadRequest" {
		t.Errorf("unknown property: %d %v", status, out)
	}
	if status, _ := graphGet(t, srv, "GET", v1+"/groups/"+g+"/members?$top=1000", "", nil); status != 400 {
		t.Errorf("$top=1000: %d, want 400", status)
	}
	if status, out := graphGet(t, srv, "GET", v1+"/users/"+fmt.Sprint("missing"), "", nil); status != 404 || errCode(out) != "Request_ResourceNotFound" {
		t.Errorf("missing user: %d %v", status, out)
	}

	// $batch: at most 20 requests; inner answers carry their own status.
	var reqs []string
	for i := 0; i < 21; i++ {
		reqs = append(reqs, fmt.Sprintf(`{"id":"%d","method":"GET","url":"/users/%s"}`, i, ids[i%7]))
	}
	if status, _ := graphGet(t, srv, "POST", v1+"/$batch", `{"requests":[`+strings.Join(reqs, ",")+`]}`, map[string]string{"Content-Type": "application/json"}); status != 400 {
		t.Errorf("21 requests in a batch: %d, want 400", status)
	}
	srv.RevokePermission(msgraphfake.PermGroupMemberReadAll)
	status, out = graphGet(t, srv, "POST", v1+"/$batch", `{"requests":[{"id":"a","method":"GET","url":"/users/`+ids[0]+`"},{"id":"b","method":"GET","url":"/groups/`+g+`/members"}]}`, map[string]string{"Content-Type": "application/json"})
	got := map[string]float64{}
	for _, r := range out["responses"].([]any) {
		m := r.(map[string]any)
		got[m["id"].(string)] = m["status"].(float64)
	}
	if status != 200 || got["a"] != 200 || got["b"] != 403 {
		t.Errorf("batch with a missing permission: %d %v", status, got)
	}

	// Throttling: 429 with Retry-After and the throttle headers.
	srv.ThrottleNext(1, "9")
	a := postToken(t, srv.TokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {"s"}, "scope": {srv.URL + "/.default"}})
	req, _ := http.NewRequest("GET", v1+"/users/delta", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "9" || resp.Header.Get("x-ms-throttle-scope") == "" {
		t.Errorf("throttled answer %d %v", resp.StatusCode, resp.Header)
	}
}
