// Package googlefake is an in-process stand-in for the Google Workspace
// Admin SDK Directory API and Google's OAuth 2.0 token endpoint, for tests of
// roster's Google connector and of roster end to end. It answers over real
// HTTP (httptest) the way Google documents its API.
//
// Documented behaviour it covers:
//
//   - GET /admin/directory/v1/users (users.list) with customer
//     ("my_customer" or the customer ID) or domain, maxResults 1..500
//     (default 100), pageToken/nextPageToken (absent on the last page), and
//     the users resource fields id, primaryEmail, name{givenName,familyName,
//     fullName}, suspended, suspensionReason, archived, isAdmin, orgUnitPath,
//     emails, customerId, creationTime; users.get by id, primary email or
//     alias.
//   - GET /admin/directory/v1/groups (groups.list) with customer or domain,
//     maxResults 1..200 (default 200); groups.get by id, email or alias;
//     the group fields id, email, name, description, directMembersCount,
//     aliases.
//   - GET /admin/directory/v1/groups/{groupKey}/members (members.list),
//     maxResults 1..200 (default 200), roles, includeDerivedMembership; the
//     member fields id, email, role, type (USER, GROUP, CUSTOMER), status.
//   - Empty lists are left out of the answer, as Google does ({"kind",
//     "etag"} and no "users" key).
//   - Partial responses: the fields parameter ("nextPageToken,users(id,
//     name/fullName)") selects what the answer holds.
//   - Errors in Google's JSON shape {"error": {"code", "message", "errors":
//     [{"message", "domain", "reason"}], "status"}}: 400 invalid for a
//     maxResults out of range, 400 badRequest without customer or domain,
//     401 authError for a missing, unknown or expired access token, 403
//     insufficientPermissions for a token without the method's scope, 403
//     forbidden ("Not Authorized to access this resource/api") when the
//     impersonated user is not an admin or the domain is not the account's,
//     404 notFound for an unknown user or group key.
//   - Rate limits as Google answers them: 403 userRateLimitExceeded and
//     quotaExceeded (domain usageLimits), 429 rateLimitExceeded, with a
//     Retry-After header only when a test asks for one (Google documents
//     exponential backoff, not Retry-After). 500 and 503 backendError.
//   - The OAuth 2.0 token endpoint for service accounts (RFC 7523
//     jwt-bearer grant): the assertion's RS256 signature is checked against
//     the service account's public key, iss against the service account's
//     client_email, aud against the token URL, exp/iat for a token of at most
//     an hour around now, sub against the domain's users (domain-wide
//     delegation), scope against the scopes delegated to the client ID in
//     the Admin console. Errors are Google's: 400 invalid_grant ("Invalid JWT
//     Signature.", "Invalid email or User ID", "Invalid JWT: Token must be a
//     short-lived token..."), 401 unauthorized_client for scopes that are not
//     delegated, 400 unsupported_grant_type, 400 invalid_scope.
//
// Not covered: writes (insert, update, patch, delete) over HTTP (tests change
// the directory through the Server's methods instead), users.list query,
// orderBy, sortOrder, showDeleted, projection=custom and viewType, groups.list
// query and userKey, push notifications (watch), batch requests, ETag
// conditional requests, secondary domains, and per-field validation of the
// fields parameter (an unknown field selects nothing here; Google answers 400).
// An expired page token (ExpirePageTokens) is answered 400 invalid; Google
// documents no shape for it, so that answer is the fake's choice.
package googlefake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scopes the fake knows (read-only and read-write directory scopes).
const (
	ScopeUserReadonly        = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeUser                = "https://www.googleapis.com/auth/admin.directory.user"
	ScopeGroupReadonly       = "https://www.googleapis.com/auth/admin.directory.group.readonly"
	ScopeGroup               = "https://www.googleapis.com/auth/admin.directory.group"
	ScopeGroupMemberReadonly = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"
	ScopeGroupMember         = "https://www.googleapis.com/auth/admin.directory.group.member"
)

// Endpoints, as counted by Requests and matched by Fault.Endpoint.
const (
	EndpointToken       = "token"
	EndpointUsersList   = "users.list"
	EndpointUsersGet    = "users.get"
	EndpointGroupsList  = "groups.list"
	EndpointGroupsGet   = "groups.get"
	EndpointMembersList = "members.list"
)

// Documented page-size limits.
const (
	MaxUsersPage   = 500
	MaxGroupsPage  = 200
	MaxMembersPage = 200

	defaultUsersPage = 100
)

// Options configure a Server. Zero fields take defaults.
type Options struct {
	Domain     string // default "example.com"
	CustomerID string // default "C03az79cb"
	// Admin is the super admin the service account may act as; default
	// "admin@" + Domain. It is added as a user.
	Admin string
	// Key is the service account's RSA key; one is generated when nil
	// (tests that start many servers pass one to save the time).
	Key *rsa.PrivateKey
	// Now is the fake's clock for tokens; default time.Now.
	Now func() time.Time
}

// User is a Google Workspace user as the fake stores it.
type User struct {
	ID           string
	PrimaryEmail string
	GivenName    string
	FamilyName   string
	FullName     string // default "GivenName FamilyName"
	Suspended    bool
	Archived     bool
	IsAdmin      bool
	OrgUnitPath  string // default "/"
	Aliases      []string
}

// Group is a Google group as the fake stores it.
type Group struct {
	ID          string
	Email       string
	Name        string
	Description string
	Aliases     []string
}

// Member types, as members.list reports them.
const (
	TypeUser     = "USER"
	TypeGroup    = "GROUP"
	TypeCustomer = "CUSTOMER"
)

type member struct {
	id    string
	email string // only for members outside the directory
	typ   string
}

type group struct {
	Group
	members []member
}

type serviceAccount struct {
	email, clientID, keyID string
	pub                    *rsa.PublicKey
}

type accessToken struct {
	sub    string
	scopes map[string]bool
	exp    time.Time
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API root: the connector's api_url. Requests go to
	// URL + "/admin/directory/v1/...".
	URL string
	// TokenURL is the OAuth 2.0 token endpoint: the connector's token_url,
	// and the token_uri of ServiceAccountJSON.
	TokenURL string

	srv *httptest.Server
	now func() time.Time

	mu         sync.Mutex
	domain     string
	customerID string
	adminEmail string
	saKey      *rsa.PrivateKey
	sa         *serviceAccount
	accounts   map[string]*serviceAccount // by client email
	delegated  map[string]map[string]bool // client ID -> scopes
	admins     map[string]bool            // lower-cased emails with directory read privileges
	users      map[string]*User
	groups     map[string]*group
	userOrder  []string // ids sorted by email; nil when stale
	groupOrder []string
	tokens     map[string]accessToken
	faults     []*Fault
	counts     map[string]int
	epoch      int // page tokens of older epochs are expired
	seq        int
}

// New starts a fake with an empty directory holding only the admin, a
// service account (ServiceAccountJSON) whose client ID is delegated the
// read-only directory scopes, and no faults.
func New(opts Options) *Server {
	if opts.Domain == "" {
		opts.Domain = "example.com"
	}
	if opts.CustomerID == "" {
		opts.CustomerID = "C03az79cb"
	}
	if opts.Admin == "" {
		opts.Admin = "admin@" + opts.Domain
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := opts.Key
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(fmt.Sprintf("googlefake: generate key: %v", err))
		}
	}
	s := &Server{
		now:        opts.Now,
		domain:     strings.ToLower(opts.Domain),
		customerID: opts.CustomerID,
		adminEmail: strings.ToLower(opts.Admin),
		saKey:      key,
		accounts:   map[string]*serviceAccount{},
		delegated:  map[string]map[string]bool{},
		admins:     map[string]bool{},
		users:      map[string]*User{},
		groups:     map[string]*group{},
		tokens:     map[string]accessToken{},
		counts:     map[string]int{},
	}
	s.sa = &serviceAccount{
		email:    "roster-sync@roster-test.iam.gserviceaccount.com",
		clientID: "104729384756102938475",
		keyID:    "4f1c2a7d9e0b",
		pub:      &key.PublicKey,
	}
	s.accounts[s.sa.email] = s.sa
	s.delegated[s.sa.clientID] = map[string]bool{ScopeUserReadonly: true, ScopeGroupReadonly: true, ScopeGroupMemberReadonly: true}
	s.admins[s.adminEmail] = true
	s.addUserLocked(User{PrimaryEmail: s.adminEmail, GivenName: "Directory", FamilyName: "Admin", IsAdmin: true})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("GET /admin/directory/v1/users", s.api(EndpointUsersList, s.usersList))
	mux.HandleFunc("GET /admin/directory/v1/users/{userKey}", s.api(EndpointUsersGet, s.usersGet))
	mux.HandleFunc("GET /admin/directory/v1/groups", s.api(EndpointGroupsList, s.groupsList))
	mux.HandleFunc("GET /admin/directory/v1/groups/{groupKey}", s.api(EndpointGroupsGet, s.groupsGet))
	mux.HandleFunc("GET /admin/directory/v1/groups/{groupKey}/members", s.api(EndpointMembersList, s.membersList))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "notFound", "global", "", "Not Found")
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.TokenURL = s.srv.URL + "/token"
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Domain is the primary domain; Customer the customer ID; Admin the super
// admin's email.
func (s *Server) Domain() string   { return s.domain }
func (s *Server) Customer() string { return s.customerID }
func (s *Server) Admin() string    { return s.adminEmail }

// ClientEmail and ClientID identify the fake's service account.
func (s *Server) ClientEmail() string { return s.sa.email }
func (s *Server) ClientID() string    { return s.sa.clientID }

// ServiceAccountJSON is the key file of the fake's service account, as the
// Google Cloud console gives it, with token_uri pointing at TokenURL.
func (s *Server) ServiceAccountJSON() string {
	s.mu.Lock()
	key := s.saKey
	s.mu.Unlock()
	return KeyJSON(s.sa.email, s.sa.clientID, s.sa.keyID, key, s.TokenURL)
}

// RotateKey replaces the service account's key, as deleting the old key in
// the Cloud console does: assertions signed with the old key are refused
// with "Invalid JWT Signature.". It returns the new key file.
func (s *Server) RotateKey(key *rsa.PrivateKey) string {
	s.mu.Lock()
	s.saKey = key
	s.sa.pub = &key.PublicKey
	s.mu.Unlock()
	return s.ServiceAccountJSON()
}

// Delegate sets the scopes the Admin console's domain-wide delegation grants
// the service account's client ID (replacing the previous list). Tokens
// already issued keep their scopes until they expire.
func (s *Server) Delegate(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]bool{}
	for _, sc := range scopes {
		m[sc] = true
	}
	s.delegated[s.sa.clientID] = m
}

// SetAdmin gives or takes an account's privilege to read the directory
// (an admin role). Without it every directory read answers 403 forbidden.
func (s *Server) SetAdmin(email string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.admins[strings.ToLower(email)] = true
	} else {
		delete(s.admins, strings.ToLower(email))
	}
}

// RevokeTokens makes every access token issued so far invalid (401).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ExpirePageTokens makes every page token issued so far invalid: a listing
// that goes on with one gets 400.
func (s *Server) ExpirePageTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
}

// AddUser adds a user and returns it with its ID (generated when empty).
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.addUserLocked(u)
}

func (s *Server) addUserLocked(u User) *User {
	if u.ID == "" {
		s.seq++
		u.ID = fmt.Sprintf("1%020d", 7340000000000000+s.seq)
	}
	if u.OrgUnitPath == "" {
		u.OrgUnitPath = "/"
	}
	cp := u
	cp.Aliases = slices.Clone(u.Aliases)
	s.users[u.ID] = &cp
	s.userOrder = nil
	return &cp
}

// AddUsers adds many users at once (a large directory for a test).
func (s *Server) AddUsers(us []User) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = *s.addUserLocked(u)
	}
	return out
}

// UpdateUser changes a user in place; it reports whether the user exists.
func (s *Server) UpdateUser(id string, change func(*User)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return false
	}
	change(u)
	u.ID = id
	s.userOrder = nil
	return true
}

// SuspendUser suspends (or restores) a user.
func (s *Server) SuspendUser(id string, suspended bool) bool {
	return s.UpdateUser(id, func(u *User) { u.Suspended = suspended })
}

// ArchiveUser archives (or unarchives) a user.
func (s *Server) ArchiveUser(id string, archived bool) bool {
	return s.UpdateUser(id, func(u *User) { u.Archived = archived })
}

// DeleteUser deletes a user; like Google, it also leaves every group.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	s.userOrder = nil
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m member) bool { return m.id == id })
	}
}

// AddGroup adds a group and returns it with its ID (generated when empty).
func (s *Server) AddGroup(g Group) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.ID == "" {
		s.seq++
		g.ID = fmt.Sprintf("0%014x", 0x3ab5c7d9e1000+s.seq)
	}
	s.groups[g.ID] = &group{Group: g}
	s.groupOrder = nil
	return g
}

// UpdateGroup changes a group's name, email or description.
func (s *Server) UpdateGroup(id string, change func(*Group)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return false
	}
	change(&g.Group)
	g.ID = id
	s.groupOrder = nil
	return true
}

// DeleteGroup deletes a group; it also leaves the groups it was a member of.
func (s *Server) DeleteGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, id)
	s.groupOrder = nil
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m member) bool { return m.id == id })
	}
}

// SetMembers replaces a group's direct members with the given user and
// group IDs. It panics on an unknown group or member: that is a test bug.
func (s *Server) SetMembers(groupID string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup(groupID)
	g.members = nil
	for _, id := range ids {
		s.addMemberLocked(g, id)
	}
}

// AddMember adds a user or group (by ID) to a group.
func (s *Server) AddMember(groupID, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMemberLocked(s.mustGroup(groupID), id)
}

// RemoveMember removes a direct member from a group.
func (s *Server) RemoveMember(groupID, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup(groupID)
	g.members = slices.DeleteFunc(g.members, func(m member) bool { return m.id == id })
}

// AddExternalMember adds an account outside the directory (a consumer
// Google account, another company's user) to a group; members.list reports
// it as type USER with its own ID.
func (s *Server) AddExternalMember(groupID, email string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup(groupID)
	s.seq++
	id := fmt.Sprintf("1%020d", 9910000000000000+s.seq)
	g.members = append(g.members, member{id: id, email: email, typ: TypeUser})
	return id
}

// AddCustomerMember makes every user of the account a member of the group
// (members.list: type CUSTOMER, id the customer ID).
func (s *Server) AddCustomerMember(groupID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup(groupID)
	g.members = append(g.members, member{id: s.customerID, typ: TypeCustomer})
}

func (s *Server) mustGroup(id string) *group {
	g, ok := s.groups[id]
	if !ok {
		panic("googlefake: no group " + id)
	}
	return g
}

func (s *Server) addMemberLocked(g *group, id string) {
	for _, m := range g.members {
		if m.id == id {
			return
		}
	}
	switch {
	case s.users[id] != nil:
		g.members = append(g.members, member{id: id, typ: TypeUser})
	case s.groups[id] != nil:
		g.members = append(g.members, member{id: id, typ: TypeGroup})
	default:
		panic("googlefake: no user or group " + id)
	}
}

// FaultKind is how a Fault answers.
type FaultKind int

// Fault kinds.
const (
	// RateLimitUser answers 403 userRateLimitExceeded.
	RateLimitUser FaultKind = iota + 1
	// QuotaExceeded answers 403 quotaExceeded.
	QuotaExceeded
	// RateLimit429 answers 429 rateLimitExceeded.
	RateLimit429
	// DailyLimit answers 403 dailyLimitExceeded (not worth retrying).
	DailyLimit
	// ServerError answers 500 backendError.
	ServerError
	// Unavailable answers 503.
	Unavailable
	// ShortPage answers 200 with fewer items than asked and a nextPageToken
	// that skips the missing ones.
	ShortPage
)

// Fault is an injected failure. It answers the requests it matches, Count
// times, then is spent.
type Fault struct {
	// Endpoint is one of the Endpoint constants; empty matches every API
	// endpoint (not the token endpoint).
	Endpoint string
	// Page, when not zero, matches only that page of a listing (1 is the
	// request without a pageToken).
	Page int
	// Group, when set, matches only members.list of that group ID.
	Group string
	// Count is how many requests it answers; zero means one.
	Count int
	Kind  FaultKind
	// RetryAfter, when not zero, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	s.faults = append(s.faults, &f)
}

// ClearFaults drops every fault not yet spent.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns how many requests an endpoint got (faulted ones
// included); with no argument, the total over every endpoint.
func (s *Server) Requests(endpoint ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(endpoint) == 0 {
		n := 0
		for _, c := range s.counts {
			n += c
		}
		return n
	}
	n := 0
	for _, e := range endpoint {
		n += s.counts[e]
	}
	return n
}

// ResetCounts sets every request count to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// takeFault returns the first fault matching the request and spends one of
// its uses. Called with s.mu held.
func (s *Server) takeFault(endpoint string, page int, groupID string) *Fault {
	for i, f := range s.faults {
		if f.Endpoint != endpoint && (f.Endpoint != "" || endpoint == EndpointToken) {
			continue
		}
		if f.Page != 0 && f.Page != page {
			continue
		}
		if f.Group != "" && f.Group != groupID {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return f
	}
	return nil
}

// writeFault answers a throttling or error fault; it reports false for
// ShortPage, which the handler applies itself.
func writeFault(w http.ResponseWriter, f *Fault) bool {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
	}
	switch f.Kind {
	case RateLimitUser:
		writeError(w, http.StatusForbidden, "userRateLimitExceeded", "usageLimits", "PERMISSION_DENIED", "User Rate Limit Exceeded")
	case QuotaExceeded:
		writeError(w, http.StatusForbidden, "quotaExceeded", "usageLimits", "PERMISSION_DENIED", "Quota Exceeded")
	case RateLimit429:
		writeError(w, http.StatusTooManyRequests, "rateLimitExceeded", "usageLimits", "RESOURCE_EXHAUSTED", "Rate Limit Exceeded")
	case DailyLimit:
		writeError(w, http.StatusForbidden, "dailyLimitExceeded", "usageLimits", "PERMISSION_DENIED", "Daily Limit Exceeded")
	case ServerError:
		writeError(w, http.StatusInternalServerError, "backendError", "global", "INTERNAL", "Backend Error")
	case Unavailable:
		writeError(w, http.StatusServiceUnavailable, "backendError", "global", "UNAVAILABLE", "The service is currently unavailable.")
	default:
		return false
	}
	return true
}

// writeError answers in Google's JSON error shape.
func writeError(w http.ResponseWriter, code int, reason, domain, status, message string) {
	body := map[string]any{
		"code":    code,
		"message": message,
		"errors":  []any{map[string]any{"message": message, "domain": domain, "reason": reason}},
	}
	if status != "" {
		body["status"] = status
	}
	writeJSON(w, code, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// call is one authorized API request being answered.
type call struct {
	w        http.ResponseWriter
	r        *http.Request
	tok      accessToken
	fields   selection
	page     int  // page of a listing this request asks for
	short    bool // a ShortPage fault applies
	endpoint string
}

// api wraps a handler with what every Directory API request goes through:
// counting, authentication, the fields parameter, faults.
func (s *Server) api(endpoint string, h func(c *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.counts[endpoint]++
		c := &call{w: w, r: r, endpoint: endpoint, page: 1}
		if pt := r.URL.Query().Get("pageToken"); pt != "" {
			if t, ok := decodePageToken(pt); ok {
				c.page = t.Page
			}
		}
		auth := r.Header.Get("Authorization")
		tok, ok := s.tokens[strings.TrimPrefix(auth, "Bearer ")]
		if !strings.HasPrefix(auth, "Bearer ") || !ok || !s.now().Before(tok.exp) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "authError", "global", "UNAUTHENTICATED",
				"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
			return
		}
		c.tok = tok
		if f := s.takeFault(endpoint, c.page, r.PathValue("groupKey")); f != nil {
			if writeFault(w, f) {
				return
			}
			c.short = f.Kind == ShortPage
		}
		if !s.hasScope(tok, endpoint) {
			writeError(w, http.StatusForbidden, "insufficientPermissions", "global", "PERMISSION_DENIED",
				"Request had insufficient authentication scopes.")
			return
		}
		if !s.admins[tok.sub] {
			writeForbidden(w)
			return
		}
		if f := r.URL.Query().Get("fields"); f != "" {
			sel, err := parseFields(f)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalidParameter", "global", "INVALID_ARGUMENT", "Invalid field selection "+f)
				return
			}
			c.fields = sel
		}
		h(c)
	}
}

func writeForbidden(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "forbidden", "global", "PERMISSION_DENIED", "Not Authorized to access this resource/api")
}

func (s *Server) hasScope(t accessToken, endpoint string) bool {
	switch endpoint {
	case EndpointUsersList, EndpointUsersGet:
		return t.scopes[ScopeUserReadonly] || t.scopes[ScopeUser]
	case EndpointGroupsList, EndpointGroupsGet:
		return t.scopes[ScopeGroupReadonly] || t.scopes[ScopeGroup]
	case EndpointMembersList:
		return t.scopes[ScopeGroupReadonly] || t.scopes[ScopeGroup] || t.scopes[ScopeGroupMemberReadonly] || t.scopes[ScopeGroupMember]
	}
	return false
}

func (c *call) reply(v map[string]any) {
	var out any = v
	if c.fields != nil {
		out = c.fields.apply(v)
	}
	writeJSON(c.w, http.StatusOK, out)
}

// pageToken is what the fake's opaque page tokens carry.
type pageToken struct {
	Kind   string `json:"k"`
	Scope  string `json:"s"`
	Offset int    `json:"o"`
	Page   int    `json:"p"`
	Epoch  int    `json:"e"`
}

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, bool) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Page < 2 || t.Offset < 0 {
		return pageToken{}, false
	}
	return t, true
}

// page cuts one page of n items out of a listing: it reads maxResults and
// pageToken and returns [from, to) and the next page token ("" on the last
// page). ok is false when it already answered an error.
func (s *Server) page(c *call, kind, scope string, n, maxPage, defPage int) (from, to int, next string, ok bool) {
	q := c.r.URL.Query()
	size := defPage
	if v := q.Get("maxResults"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 || m > maxPage {
			msg := fmt.Sprintf("Invalid value '%s'. Values must be within the range: [1, %d]", v, maxPage)
			writeError(c.w, http.StatusBadRequest, "invalid", "global", "INVALID_ARGUMENT", msg)
			return 0, 0, "", false
		}
		size = m
	}
	if pt := q.Get("pageToken"); pt != "" {
		t, valid := decodePageToken(pt)
		if !valid || t.Kind != kind || t.Scope != scope || t.Epoch != s.epoch {
			writeError(c.w, http.StatusBadRequest, "invalid", "global", "INVALID_ARGUMENT", "Invalid Input: pageToken")
			return 0, 0, "", false
		}
		from = t.Offset
	}
	from = min(from, n)
	to = min(from+size, n)
	nextFrom := to
	if c.short && to-from > 1 {
		to = from + (to-from)/2 // items [to, nextFrom) are never sent
	}
	if nextFrom < n {
		next = encodePageToken(pageToken{Kind: kind, Scope: scope, Offset: nextFrom, Page: c.page + 1, Epoch: s.epoch})
	}
	return from, to, next, true
}

// listScope checks customer/domain and returns a key for page tokens, or
// answers the error.
func (s *Server) listScope(c *call) (scope string, ok bool) {
	q := c.r.URL.Query()
	customer, domain := q.Get("customer"), strings.ToLower(q.Get("domain"))
	switch {
	case domain != "":
		if domain != s.domain {
			writeForbidden(c.w)
			return "", false
		}
		return "d:" + domain, true
	case customer == "my_customer" || (customer != "" && customer == s.customerID):
		return "c:" + s.customerID, true
	case customer != "":
		writeError(c.w, http.StatusBadRequest, "badRequest", "global", "INVALID_ARGUMENT", "Bad Request")
		return "", false
	default:
		writeError(c.w, http.StatusBadRequest, "badRequest", "global", "INVALID_ARGUMENT", "Bad Request")
		return "", false
	}
}

func (s *Server) sortedUsers() []string {
	if s.userOrder == nil {
		ids := make([]string, 0, len(s.users))
		for id := range s.users {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int {
			return strings.Compare(strings.ToLower(s.users[a].PrimaryEmail), strings.ToLower(s.users[b].PrimaryEmail))
		})
		s.userOrder = ids
	}
	return s.userOrder
}

func (s *Server) sortedGroups() []string {
	if s.groupOrder == nil {
		ids := make([]string, 0, len(s.groups))
		for id := range s.groups {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int {
			return strings.Compare(strings.ToLower(s.groups[a].Email), strings.ToLower(s.groups[b].Email))
		})
		s.groupOrder = ids
	}
	return s.groupOrder
}

func (s *Server) usersList(c *call) {
	scope, ok := s.listScope(c)
	if !ok {
		return
	}
	q := c.r.URL.Query()
	for _, unsupported := range []string{"query", "showDeleted", "orderBy", "viewType", "customFieldMask", "event"} {
		if q.Get(unsupported) != "" {
			writeError(c.w, http.StatusBadRequest, "invalid", "global", "INVALID_ARGUMENT", "googlefake does not implement "+unsupported)
			return
		}
	}
	ids := s.sortedUsers()
	if strings.HasPrefix(scope, "d:") {
		ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
			return !strings.HasSuffix(strings.ToLower(s.users[id].PrimaryEmail), "@"+s.domain)
		})
	}
	from, to, next, ok := s.page(c, "users", scope, len(ids), MaxUsersPage, defaultUsersPage)
	if !ok {
		return
	}
	out := map[string]any{"kind": "admin#directory#users", "etag": s.etag("users", from)}
	if to > from {
		items := make([]any, 0, to-from)
		for _, id := range ids[from:to] {
			items = append(items, s.userJSON(s.users[id]))
		}
		out["users"] = items
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	c.reply(out)
}

func (s *Server) findUser(key string) *User {
	if u := s.users[key]; u != nil {
		return u
	}
	key = strings.ToLower(key)
	for _, u := range s.users {
		if strings.ToLower(u.PrimaryEmail) == key || containsFold(u.Aliases, key) {
			return u
		}
	}
	return nil
}

func (s *Server) usersGet(c *call) {
	u := s.findUser(c.r.PathValue("userKey"))
	if u == nil {
		writeError(c.w, http.StatusNotFound, "notFound", "global", "NOT_FOUND", "Resource Not Found: userKey")
		return
	}
	c.reply(s.userJSON(u))
}

func (s *Server) userJSON(u *User) map[string]any {
	full := u.FullName
	if full == "" {
		full = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	m := map[string]any{
		"kind":         "admin#directory#user",
		"id":           u.ID,
		"etag":         s.etag("user", u.ID),
		"primaryEmail": u.PrimaryEmail,
		"name": map[string]any{
			"givenName":  u.GivenName,
			"familyName": u.FamilyName,
			"fullName":   full,
		},
		"isAdmin":                    u.IsAdmin,
		"isDelegatedAdmin":           false,
		"agreedToTerms":              true,
		"suspended":                  u.Suspended,
		"archived":                   u.Archived,
		"changePasswordAtNextLogin":  false,
		"ipWhitelisted":              false,
		"emails":                     []any{map[string]any{"address": u.PrimaryEmail, "primary": true}},
		"customerId":                 s.customerID,
		"orgUnitPath":                u.OrgUnitPath,
		"isMailboxSetup":             true,
		"isEnrolledIn2Sv":            false,
		"isEnforcedIn2Sv":            false,
		"includeInGlobalAddressList": true,
		"creationTime":               "2021-03-04T10:11:12.000Z",
		"lastLoginTime":              "1970-01-01T00:00:00.000Z",
	}
	if u.Suspended {
		m["suspensionReason"] = "ADMIN"
	}
	if len(u.Aliases) > 0 {
		m["aliases"] = stringsAny(u.Aliases)
	}
	return m
}

func (s *Server) groupsList(c *call) {
	scope, ok := s.listScope(c)
	if !ok {
		return
	}
	q := c.r.URL.Query()
	for _, unsupported := range []string{"query", "userKey", "orderBy"} {
		if q.Get(unsupported) != "" {
			writeError(c.w, http.StatusBadRequest, "invalid", "global", "INVALID_ARGUMENT", "googlefake does not implement "+unsupported)
			return
		}
	}
	ids := s.sortedGroups()
	if strings.HasPrefix(scope, "d:") {
		ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
			return !strings.HasSuffix(strings.ToLower(s.groups[id].Email), "@"+s.domain)
		})
	}
	from, to, next, ok := s.page(c, "groups", scope, len(ids), MaxGroupsPage, MaxGroupsPage)
	if !ok {
		return
	}
	out := map[string]any{"kind": "admin#directory#groups", "etag": s.etag("groups", from)}
	if to > from {
		items := make([]any, 0, to-from)
		for _, id := range ids[from:to] {
			items = append(items, s.groupJSON(s.groups[id]))
		}
		out["groups"] = items
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	c.reply(out)
}

func (s *Server) findGroup(key string) *group {
	if g := s.groups[key]; g != nil {
		return g
	}
	key = strings.ToLower(key)
	for _, g := range s.groups {
		if strings.ToLower(g.Email) == key || containsFold(g.Aliases, key) {
			return g
		}
	}
	return nil
}

func (s *Server) groupsGet(c *call) {
	g := s.findGroup(c.r.PathValue("groupKey"))
	if g == nil {
		writeError(c.w, http.StatusNotFound, "notFound", "global", "NOT_FOUND", "Resource Not Found: groupKey")
		return
	}
	c.reply(s.groupJSON(g))
}

func (s *Server) groupJSON(g *group) map[string]any {
	m := map[string]any{
		"kind":               "admin#directory#group",
		"id":                 g.ID,
		"etag":               s.etag("group", g.ID),
		"email":              g.Email,
		"name":               g.Name,
		"description":        g.Description,
		"directMembersCount": strconv.Itoa(len(g.members)),
		"adminCreated":       true,
	}
	if len(g.Aliases) > 0 {
		m["aliases"] = stringsAny(g.Aliases)
	}
	return m
}

func (s *Server) membersList(c *call) {
	g := s.findGroup(c.r.PathValue("groupKey"))
	if g == nil {
		writeError(c.w, http.StatusNotFound, "notFound", "global", "NOT_FOUND", "Resource Not Found: groupKey")
		return
	}
	q := c.r.URL.Query()
	members := g.members
	if v := q.Get("includeDerivedMembership"); v == "true" {
		members = s.derived(g)
	}
	if roles := q.Get("roles"); roles != "" {
		// Every member the fake holds has the role MEMBER.
		if !slices.Contains(strings.Split(strings.ToUpper(roles), ","), "MEMBER") {
			members = nil
		}
	}
	from, to, next, ok := s.page(c, "members", g.ID, len(members), MaxMembersPage, MaxMembersPage)
	if !ok {
		return
	}
	out := map[string]any{"kind": "admin#directory#members", "etag": s.etag("members", g.ID, from)}
	if to > from {
		items := make([]any, 0, to-from)
		for _, m := range members[from:to] {
			items = append(items, s.memberJSON(m))
		}
		out["members"] = items
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	c.reply(out)
}

// derived lists a group's members through nesting: every direct member, and
// the members of member groups.
func (s *Server) derived(g *group) []member {
	var out []member
	seen := map[string]bool{g.ID: true}
	queue := []*group{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range cur.members {
			if seen[m.id] {
				continue
			}
			seen[m.id] = true
			out = append(out, m)
			if sub := s.groups[m.id]; m.typ == TypeGroup && sub != nil {
				queue = append(queue, sub)
			}
		}
	}
	return out
}

func (s *Server) memberJSON(m member) map[string]any {
	out := map[string]any{
		"kind": "admin#directory#member",
		"etag": s.etag("member", m.id),
		"id":   m.id,
		"role": "MEMBER",
		"type": m.typ,
	}
	switch m.typ {
	case TypeUser:
		status := "ACTIVE"
		email := m.email
		if u := s.users[m.id]; u != nil {
			email = u.PrimaryEmail
			if u.Suspended {
				status = "SUSPENDED"
			}
		}
		out["email"] = email
		out["status"] = status
	case TypeGroup:
		if sub := s.groups[m.id]; sub != nil {
			out["email"] = sub.Email
		}
		out["status"] = "ACTIVE"
	case TypeCustomer:
		out["status"] = "ACTIVE"
	}
	return out
}

func (s *Server) etag(parts ...any) string {
	return fmt.Sprintf("%q", fmt.Sprint(parts...))
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
