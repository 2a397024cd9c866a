package googlefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyOnce    sync.Once
	key, wrong *rsa.PrivateKey
)

func newServer(t *testing.T) *Server {
	t.Helper()
	keyOnce.Do(func() {
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
		wrong, _ = rsa.GenerateKey(rand.Reader, 2048)
	})
	s := New(Options{Key: key})
	t.Cleanup(s.Close)
	return s
}

// assertion signs a jwt-bearer assertion by hand (RS256, RFC 7515).
func assertion(t *testing.T, k *rsa.PrivateKey, alg string, c map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": alg, "typ": "JWT", "kid": "4f1c2a7d9e0b"}) + "." + enc(c)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func claimsFor(s *Server) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss":   s.ClientEmail(),
		"sub":   s.Admin(),
		"aud":   s.TokenURL,
		"scope": ScopeUserReadonly + " " + ScopeGroupReadonly,
		"iat":   now,
		"exp":   now + 3600,
	}
}

func postToken(t *testing.T, s *Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.TokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return resp.StatusCode, body
}

func TestTokenEndpoint(t *testing.T) {
	s := newServer(t)
	s.AddUser(User{PrimaryEmail: "plain@example.com"})
	tests := []struct {
		name     string
		key      *rsa.PrivateKey
		alg      string
		mutate   func(c map[string]any)
		grant    string
		status   int
		code     string
		descPart string
	}{
		{name: "good", status: 200},
		{name: "wrongly signed", key: wrong, status: 400, code: "invalid_grant", descPart: "Invalid JWT Signature."},
		{name: "HS256 instead of RS256", alg: "HS256", status: 400, code: "invalid_grant", descPart: "Invalid JWT Signature."},
		{name: "unknown issuer", mutate: func(c map[string]any) { c["iss"] = "other@x.iam.gserviceaccount.com" }, status: 400, code: "invalid_grant", descPart: "account not found"},
		{name: "wrong audience", mutate: func(c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" }, status: 400, code: "invalid_grant", descPart: "audience"},
		{name: "expired", mutate: func(c map[string]any) { c["iat"], c["exp"] = time.Now().Unix()-7200, time.Now().Unix()-3600 },
			status: 400, code: "invalid_grant", descPart: "short-lived"},
		{name: "too long", mutate: func(c map[string]any) { c["exp"] = time.Now().Unix() + 7200 }, status: 400, code: "invalid_grant", descPart: "short-lived"},
		{name: "sub not a user", mutate: func(c map[string]any) { c["sub"] = "ghost@example.com" }, status: 400, code: "invalid_grant", descPart: "Invalid email or User ID"},
		{name: "scope not delegated", mutate: func(c map[string]any) { c["scope"] = ScopeUser }, status: 401, code: "unauthorized_client"},
		{name: "no scope", mutate: func(c map[string]any) { c["scope"] = "" }, status: 400, code: "invalid_scope"},
		{name: "wrong grant type", grant: "client_credentials", status: 400, code: "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsFor(s)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			k, alg, grant := key, "RS256", jwtBearer
			if tt.key != nil {
				k = tt.key
			}
			if tt.alg != "" {
				alg = tt.alg
			}
			if tt.grant != "" {
				grant = tt.grant
			}
			status, body := postToken(t, s, url.Values{"grant_type": {grant}, "assertion": {assertion(t, k, alg, c)}})
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if tt.status == 200 {
				if body["token_type"] != "Bearer" || !strings.HasPrefix(body["access_token"].(string), "ya29.") || body["expires_in"] != 3599.0 {
					t.Errorf("token answer %v", body)
				}
				return
			}
			if body["error"] != tt.code || !strings.Contains(body["error_description"].(string), tt.descPart) {
				t.Errorf("answer %v, want %s containing %q", body, tt.code, tt.descPart)
			}
		})
	}
	if got := s.Requests(EndpointToken); got != len(tests) {
		t.Errorf("token requests counted %d, want %d", got, len(tests))
	}
}

// token gets an access token the way a correct client does.
func token(t *testing.T, s *Server, sub string) string {
	t.Helper()
	c := claimsFor(s)
	c["sub"] = sub
	status, body := postToken(t, s, url.Values{"grant_type": {jwtBearer}, "assertion": {assertion(t, key, "RS256", c)}})
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	return body["access_token"].(string)
}

func get(t *testing.T, s *Server, tok, path string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: not JSON: %s", path, b)
	}
	return resp.StatusCode, resp.Header, body
}

// reasonOf reads error.errors[0].reason of a Google error answer.
func reasonOf(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	errs, _ := e["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	r, _ := errs[0].(map[string]any)["reason"].(string)
	return r
}

func TestDirectoryAnswers(t *testing.T) {
	s := newServer(t)
	for i := 0; i < 5; i++ {
		s.AddUser(User{PrimaryEmail: "u" + string(rune('a'+i)) + "@example.com", GivenName: "G", FamilyName: "F", Suspended: i == 2})
	}
	g := s.AddGroup(Group{Email: "eng@example.com", Name: "Eng"})
	sub := s.AddGroup(Group{Email: "sub@example.com", Name: "Sub"})
	s.SetMembers(sub.ID, s.AddUser(User{PrimaryEmail: "deep@example.com"}).ID)
	s.AddMember(g.ID, sub.ID)
	tok := token(t, s, s.Admin())

	// Paging: 6 users in pages of 4; nextPageToken absent on the last page.
	st, _, p1 := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer&maxResults=4")
	if st != 200 || len(p1["users"].([]any)) != 4 || p1["nextPageToken"] == nil || p1["kind"] != "admin#directory#users" {
		t.Fatalf("page 1: %d %v", st, p1)
	}
	_, _, p2 := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer&maxResults=4&pageToken="+p1["nextPageToken"].(string))
	if len(p2["users"].([]any)) != 3 || p2["nextPageToken"] != nil {
		t.Fatalf("page 2: %v", p2)
	}
	// Partial response.
	_, _, pf := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer&maxResults=500&fields="+url.QueryEscape("users(id,name/fullName,suspended)"))
	first := pf["users"].([]any)[0].(map[string]any)
	if _, ok := first["primaryEmail"]; ok || pf["kind"] != nil || first["name"].(map[string]any)["fullName"] == nil || len(first) != 3 {
		t.Errorf("fields not applied: %v", first)
	}
	// Documented limits.
	for path, max := range map[string]string{
		"/admin/directory/v1/users?customer=my_customer&maxResults=501":  "500",
		"/admin/directory/v1/groups?customer=my_customer&maxResults=201": "200",
		"/admin/directory/v1/groups/" + g.ID + "/members?maxResults=201": "200",
	} {
		st, _, body := get(t, s, tok, path)
		if st != 400 || reasonOf(body) != "invalid" || !strings.Contains(body["error"].(map[string]any)["message"].(string), max) {
			t.Errorf("%s: %d %v", path, st, body)
		}
	}
	// Members: types, nesting, derived membership.
	_, _, m := get(t, s, tok, "/admin/directory/v1/groups/eng@example.com/members")
	if ms := m["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["type"] != "GROUP" {
		t.Errorf("members: %v", m)
	}
	_, _, m = get(t, s, tok, "/admin/directory/v1/groups/"+g.ID+"/members?includeDerivedMembership=true")
	if ms := m["members"].([]any); len(ms) != 2 {
		t.Errorf("derived members: %v", m)
	}
	// Empty list: no "members" key.
	empty := s.AddGroup(Group{Email: "empty@example.com", Name: "Empty"})
	_, _, m = get(t, s, tok, "/admin/directory/v1/groups/"+empty.ID+"/members")
	if _, ok := m["members"]; ok {
		t.Errorf("empty list has a members key: %v", m)
	}
	// Errors.
	checks := []struct {
		tok, path, reason string
		status            int
	}{
		{"", "/admin/directory/v1/users?customer=my_customer", "authError", 401},
		{"ya29.nope", "/admin/directory/v1/users?customer=my_customer", "authError", 401},
		{tok, "/admin/directory/v1/users", "badRequest", 400},
		{tok, "/admin/directory/v1/users?domain=other.example", "forbidden", 403},
		{tok, "/admin/directory/v1/groups/nope@example.com", "notFound", 404},
		{tok, "/admin/directory/v1/users/nope@example.com", "notFound", 404},
		{tok, "/admin/directory/v1/users?customer=my_customer&pageToken=garbage", "invalid", 400},
	}
	for _, c := range checks {
		st, _, body := get(t, s, c.tok, c.path)
		if st != c.status || reasonOf(body) != c.reason || body["error"].(map[string]any)["code"] != float64(c.status) {
			t.Errorf("%s: %d %v, want %d %s", c.path, st, body, c.status, c.reason)
		}
	}
	// A non-admin subject gets 403 forbidden on every read.
	plain := s.AddUser(User{PrimaryEmail: "plain@example.com"})
	st, _, body := get(t, s, token(t, s, plain.PrimaryEmail), "/admin/directory/v1/users?customer=my_customer")
	if st != 403 || reasonOf(body) != "forbidden" {
		t.Errorf("non-admin: %d %v", st, body)
	}
	// A token without the group scope: 403 insufficientPermissions.
	c := claimsFor(s)
	c["scope"] = ScopeUserReadonly
	_, tb := postToken(t, s, url.Values{"grant_type": {jwtBearer}, "assertion": {assertion(t, key, "RS256", c)}})
	st, _, body = get(t, s, tb["access_token"].(string), "/admin/directory/v1/groups?customer=my_customer")
	if st != 403 || reasonOf(body) != "insufficientPermissions" {
		t.Errorf("missing scope: %d %v", st, body)
	}
}

func TestFaults(t *testing.T) {
	s := newServer(t)
	for i := 0; i < 10; i++ {
		s.AddUser(User{PrimaryEmail: "u" + string(rune('a'+i)) + "@example.com"})
	}
	tok := token(t, s, s.Admin())
	s.Inject(Fault{Endpoint: EndpointUsersList, Page: 2, Kind: RateLimitUser, Count: 2, RetryAfter: 1500 * time.Millisecond})
	s.Inject(Fault{Endpoint: EndpointUsersList, Page: 3, Kind: ShortPage})
	_, _, p1 := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer&maxResults=4")
	next := "/admin/directory/v1/users?customer=my_customer&maxResults=4&pageToken=" + p1["nextPageToken"].(string)
	for i := 0; i < 2; i++ {
		st, h, body := get(t, s, tok, next)
		if st != 403 || reasonOf(body) != "userRateLimitExceeded" || h.Get("Retry-After") != "2" {
			t.Fatalf("throttled page: %d %v %v", st, h, body)
		}
	}
	st, _, p2 := get(t, s, tok, next)
	if st != 200 || len(p2["users"].([]any)) != 4 {
		t.Fatalf("page 2 after the fault: %d %v", st, p2)
	}
	_, _, p3 := get(t, s, tok, "/admin/directory/v1/users?customer=my_customer&maxResults=4&pageToken="+p2["nextPageToken"].(string))
	if len(p3["users"].([]any)) != 1 || p3["nextPageToken"] != nil {
		// 11 users: page 3 holds 3; short, it gives 1 and no next page
		// since nothing follows.
		t.Errorf("short page: %v", p3)
	}
	if got := s.Requests(EndpointUsersList); got != 5 {
		t.Errorf("users.list counted %d, want 5", got)
	}
	s.ExpirePageTokens()
	if st, _, body := get(t, s, tok, next); st != 400 || reasonOf(body) != "invalid" {
		t.Errorf("expired page token: %d %v", st, body)
	}
	s.Inject(Fault{Kind: RateLimit429})
	if st, _, body := get(t, s, tok, "/admin/directory/v1/groups?customer=my_customer"); st != 429 || reasonOf(body) != "rateLimitExceeded" {
		t.Errorf("429: %d %v", st, body)
	}
}

func TestFieldSelection(t *testing.T) {
	sel, err := parseFields("nextPageToken,users(id,name(givenName,fullName),emails/address)")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{
		"kind": "k", "nextPageToken": "t",
		"users": []any{map[string]any{"id": "1", "primaryEmail": "a@x", "name": map[string]any{"givenName": "A", "familyName": "B", "fullName": "A B"},
			"emails": []any{map[string]any{"address": "a@x", "primary": true}}}},
	}
	got, _ := json.Marshal(sel.apply(in))
	want := `{"nextPageToken":"t","users":[{"emails":[{"address":"a@x"}],"id":"1","name":{"fullName":"A B","givenName":"A"}}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"users(id", "users()", ",", "a//b"} {
		if _, err := parseFields(bad); err == nil {
			t.Errorf("parseFields(%q) accepted", bad)
		}
	}
}
