// Package msgraphfake is an in-process Microsoft Graph and Microsoft Entra
// token endpoint for tests: an httptest server that answers the requests
// roster's msgraph connector sends the way Microsoft documents them, with a
// directory the test changes through methods, fault injection and request
// counts.
//
// Documented behaviour it covers:
//
//   - Token endpoint {LoginURL}/{tenant}/oauth2/v2.0/token, client
//     credentials grant: client_id + client_secret, or client_assertion
//     (urn:ietf:params:oauth:client-assertion-type:jwt-bearer), an RS256 JWT
//     whose x5t#S256 (or x5t) header names a registered certificate and whose
//     signature, aud (the token URL), iss and sub (the client id), exp, nbf
//     and jti are checked. The scope must be {graph}/.default. Errors are the
//     Entra JSON (error, error_description starting "AADSTSnnnn:",
//     error_codes, timestamp, trace_id, correlation_id, error_uri): unknown
//     tenant AADSTS90002, unknown application AADSTS700016, wrong secret
//     AADSTS7000215 (401 invalid_client), no credential AADSTS7000218,
//     unregistered certificate, bad signature or wrong audience AADSTS700027, assertion out
//     of its time range AADSTS700024, iss/sub not the client id
//     AADSTS700021, bad scope AADSTS1002012 or AADSTS500011.
//   - GET /v1.0/users/delta and /v1.0/groups/delta: $select (only selected
//     properties are tracked: a change to another property does not surface
//     the object; without $select users get Graph's default set, which lacks
//     accountEnabled), $select=members giving members@delta with
//     @odata.type, the query encoded into the state tokens, @odata.nextLink
//     ($skiptoken) until @odata.deltaLink ($deltatoken), $deltatoken=latest
//     ("sync from now"), $filter=id eq '...' or ... (at most 50 ids),
//     Prefer: return=minimal. One group's members are split into fragments
//     that repeat the group id and are spread over the pages in no order.
//     Removed objects come as {"id", "@removed": {"reason": "changed"}}
//     (soft-deleted, restorable) or "deleted" (gone for good); removed
//     members carry "@removed" inside members@delta. Changes made while a
//     round is read show in the next round. $top, $expand and $orderby are
//     not supported on these functions: $expand and $orderby answer 400,
//     $top is ignored.
//   - Expired delta tokens: 400 with code syncStateNotFound
//     (ExpireDeltaTokens), or 410 Gone with a Location header holding the
//     initial request (ResetSync).
//   - GET /v1.0/groups/{id}/members with $select, $top (1 to 999, default
//     100) and $skiptoken paging; GET /v1.0/users/{id} and
//     /v1.0/groups/{id} with $select; POST /v1.0/users/{id}/checkMemberGroups
//     and /v1.0/groups/{id}/checkMemberGroups (transitive, at most 20 ids).
//   - POST /v1.0/$batch: at most 20 requests with unique ids, each answered
//     with its own id, status, headers and body, in no particular order;
//     each inner request is authorised, counted and throttled on its own.
//   - Errors as {"error": {"code", "message", "innerError": {"date",
//     "request-id", "client-request-id"}}}: InvalidAuthenticationToken (401),
//     Authorization_RequestDenied (403) when the application lacks the
//     permission (User.Read.All for users, GroupMember.Read.All for groups;
//     Directory.Read.All and the ReadWrite permissions also do),
//     Request_ResourceNotFound (404), Request_BadRequest (400).
//   - Throttling: 429 TooManyRequests with Retry-After, x-ms-throttle-scope
//     and x-ms-throttle-information; successful answers carry
//     x-ms-resource-unit.
//
// Not covered: other resources and properties, $count, $search, $orderby,
// advanced queries (ConsistencyLevel), $expand, batch dependsOn, delegated
// (user) tokens, token lifetimes other than the one set, replication delay,
// and the real service's page sizes, which Graph does not document for
// delta (the fake uses PageSize). Permissions are checked against the
// grants at the time of each request, so RevokePermission takes effect at
// once; real Graph reads them from the access token, so a revocation shows
// when the token is renewed.
package msgraphfake

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Endpoint names, for counts and faults.
const (
	EndpointToken             = "token"
	EndpointUsersDelta        = "users/delta"
	EndpointGroupsDelta       = "groups/delta"
	EndpointMembers           = "groups/members"
	EndpointUser              = "users/get"
	EndpointGroup             = "groups/get"
	EndpointCheckMemberGroups = "checkMemberGroups"
	EndpointBatch             = "$batch"
)

// Permissions the fake knows.
const (
	PermUserReadAll        = "User.Read.All"
	PermGroupMemberReadAll = "GroupMember.Read.All"
	PermGroupReadAll       = "Group.Read.All"
	PermDirectoryReadAll   = "Directory.Read.All"
)

// Options configure a Server. Zero fields take defaults.
type Options struct {
	TenantID     string // default "00000000-0000-0000-0000-0000000000aa"
	ClientID     string // default "00000000-0000-0000-0000-0000000000bb"
	ClientSecret string // accepted secret; empty accepts none
	// Certificates are registered on the application; a client assertion
	// must be signed by one of their keys.
	Certificates []*x509.Certificate
	// Permissions granted to the application (with admin consent); default
	// User.Read.All and GroupMember.Read.All.
	Permissions []string
	// PageSize bounds the entries of one delta page; default 200.
	PageSize int
	// MembersPerFragment bounds the members@delta of one group entry; a
	// group with more comes as several entries. Default 100.
	MembersPerFragment int
	// TokenLifetime of issued access tokens; default one hour.
	TokenLifetime time.Duration
	// Seed makes the order of delta entries reproducible.
	Seed uint64
}

// User is a directory user as the test sets it.
type User struct {
	ID                string
	DisplayName       string
	GivenName         string
	Surname           string
	Mail              string
	UserPrincipalName string
	JobTitle          string
	Department        string
	AccountEnabled    bool
}

// Group is a security group as the test sets it.
type Group struct {
	ID          string
	DisplayName string
	Description string
}

// Server is a running fake. Close it when done.
type Server struct {
	// URL is the Graph root (the connector's graph_url); the API is under
	// URL + "/v1.0".
	URL string
	// LoginURL is the Entra root (the connector's login_url).
	LoginURL string
	// TokenURL is the tenant's token endpoint.
	TokenURL string
	TenantID string
	ClientID string

	srv  *httptest.Server
	opts Options

	mu     sync.Mutex
	seq    int64
	users  map[string]*user
	groups map[string]*group
	kinds  map[string]string // id -> "user" or "group", kept after deletion
	tombs  map[string]tomb   // deleted users and groups
	events []memberEvent
	rounds map[string]*round
	tokens map[string]time.Time
	perms  map[string]bool
	secret string
	certs  []*x509.Certificate
	rng    *mrand.Rand

	deltaGen int64           // tokens of an older generation are expired
	gone     bool            // answer delta tokens with 410 Gone
	replay   map[string]bool // kinds whose next incremental round starts where the previous one did

	throttleNext  int
	throttleAfter string
	faults        []*fault
	served        map[string]int // page requests served per endpoint, for faults
	counts        map[string]int
	httpRequests  int
	lastAssertion string
	shortNext     bool // the page being served is cut short (a ShortPage fault)
}

type user struct {
	User
	created int64
	changed map[string]int64
	everSet map[string]bool
}

type group struct {
	Group
	created int64
	changed map[string]int64
	everSet map[string]bool
	members map[string]bool
}

type tomb struct {
	kind   string
	seq    int64
	reason string
}

type memberEvent struct {
	seq    int64
	group  string
	member string
	added  bool
}

// New starts a fake with an empty directory.
func New(opts Options) *Server {
	if opts.TenantID == "" {
		opts.TenantID = "00000000-0000-0000-0000-0000000000aa"
	}
	if opts.ClientID == "" {
		opts.ClientID = "00000000-0000-0000-0000-0000000000bb"
	}
	if opts.Permissions == nil {
		opts.Permissions = []string{PermUserReadAll, PermGroupMemberReadAll}
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 200
	}
	if opts.MembersPerFragment <= 0 {
		opts.MembersPerFragment = 100
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	s := &Server{
		opts:     opts,
		TenantID: opts.TenantID,
		ClientID: opts.ClientID,
		users:    map[string]*user{},
		groups:   map[string]*group{},
		kinds:    map[string]string{},
		tombs:    map[string]tomb{},
		rounds:   map[string]*round{},
		tokens:   map[string]time.Time{},
		perms:    map[string]bool{},
		secret:   opts.ClientSecret,
		certs:    append([]*x509.Certificate(nil), opts.Certificates...),
		rng:      mrand.New(mrand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		served:   map[string]int{},
		replay:   map[string]bool{},
		counts:   map[string]int{},
	}
	for _, p := range opts.Permissions {
		s.perms[p] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	s.LoginURL = s.srv.URL
	s.TokenURL = s.srv.URL + "/" + s.TenantID + "/oauth2/v2.0/token"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) base() string { return s.URL + "/v1.0" }

// NewID returns a random object id shaped like Entra's.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var userProps = []string{"displayName", "givenName", "surname", "mail", "userPrincipalName", "jobTitle", "department", "accountEnabled"}

// defaultUserSelect is what users/delta returns without $select: Graph's
// default set, which does not hold accountEnabled.
var defaultUserSelect = []string{"displayName", "givenName", "surname", "mail", "userPrincipalName", "jobTitle"}

var groupProps = []string{"displayName", "description", "members"}

func (u *User) prop(name string) (any, bool) {
	switch name {
	case "displayName":
		return u.DisplayName, u.DisplayName != ""
	case "givenName":
		return u.GivenName, u.GivenName != ""
	case "surname":
		return u.Surname, u.Surname != ""
	case "mail":
		return u.Mail, u.Mail != ""
	case "userPrincipalName":
		return u.UserPrincipalName, u.UserPrincipalName != ""
	case "jobTitle":
		return u.JobTitle, u.JobTitle != ""
	case "department":
		return u.Department, u.Department != ""
	case "accountEnabled":
		return u.AccountEnabled, true
	}
	return nil, false
}

func (g *Group) prop(name string) (any, bool) {
	switch name {
	case "displayName":
		return g.DisplayName, g.DisplayName != ""
	case "description":
		return g.Description, g.Description != ""
	}
	return nil, false
}

func (s *Server) next() int64 { s.seq++; return s.seq }

// AddUser adds a user (an id is made when u.ID is empty) and returns its id.
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUserLocked(u)
}

func (s *Server) addUserLocked(u User) string {
	if u.ID == "" {
		u.ID = NewID()
	}
	seq := s.next()
	nu := &user{User: u, created: seq, changed: map[string]int64{}, everSet: map[string]bool{}}
	for _, p := range userProps {
		if _, set := nu.prop(p); set {
			nu.everSet[p] = true
		}
		nu.changed[p] = seq
	}
	s.users[u.ID] = nu
	s.kinds[u.ID] = "user"
	delete(s.tombs, u.ID)
	return u.ID
}

// AddUsers adds many users at once.
func (s *Server) AddUsers(us []User) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = s.addUserLocked(u)
	}
	return ids
}

// UpdateUser changes a user; only the properties fn changes are marked
// changed.
func (s *Server) UpdateUser(id string, fn func(*User)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return fmt.Errorf("msgraphfake: no user %s", id)
	}
	before := u.User
	fn(&u.User)
	u.ID = id
	seq := s.next()
	for _, p := range userProps {
		a, _ := before.prop(p)
		b, set := u.prop(p)
		if a != b {
			u.changed[p] = seq
		}
		if set {
			u.everSet[p] = true
		}
	}
	return nil
}

// DisableUser sets accountEnabled to false.
func (s *Server) DisableUser(id string) error {
	return s.UpdateUser(id, func(u *User) { u.AccountEnabled = false })
}

// DeleteUser soft-deletes a user (delta: @removed reason "changed") and
// takes it out of its groups, as Entra does.
func (s *Server) DeleteUser(id string) error { return s.deleteUser(id, "changed") }

// PurgeUser deletes a user for good (@removed reason "deleted").
func (s *Server) PurgeUser(id string) error { return s.deleteUser(id, "deleted") }

func (s *Server) deleteUser(id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[id]; !ok {
		return fmt.Errorf("msgraphfake: no user %s", id)
	}
	s.dropMemberEverywhere(id)
	delete(s.users, id)
	s.tombs[id] = tomb{kind: "user", seq: s.next(), reason: reason}
	return nil
}

func (s *Server) dropMemberEverywhere(id string) {
	for gid, g := range s.groups {
		if g.members[id] {
			delete(g.members, id)
			s.events = append(s.events, memberEvent{seq: s.next(), group: gid, member: id, added: false})
		}
	}
}

// AddGroup adds a group with direct members (users or groups) and returns
// its id.
func (s *Server) AddGroup(g Group, members ...string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.ID == "" {
		g.ID = NewID()
	}
	seq := s.next()
	ng := &group{Group: g, created: seq, changed: map[string]int64{}, everSet: map[string]bool{}, members: map[string]bool{}}
	for _, p := range []string{"displayName", "description"} {
		if _, set := ng.prop(p); set {
			ng.everSet[p] = true
		}
		ng.changed[p] = seq
	}
	s.groups[g.ID] = ng
	s.kinds[g.ID] = "group"
	delete(s.tombs, g.ID)
	for _, m := range members {
		if err := s.addMemberLocked(g.ID, m); err != nil {
			return "", err
		}
	}
	return g.ID, nil
}

// RenameGroup changes a group's displayName.
func (s *Server) RenameGroup(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return fmt.Errorf("msgraphfake: no group %s", id)
	}
	g.DisplayName = name
	g.changed["displayName"] = s.next()
	g.everSet["displayName"] = true
	return nil
}

// SetGroupDescription changes a group's description.
func (s *Server) SetGroupDescription(id, d string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return fmt.Errorf("msgraphfake: no group %s", id)
	}
	g.Description = d
	g.changed["description"] = s.next()
	g.everSet["description"] = true
	return nil
}

// DeleteGroup deletes a security group for good (@removed reason
// "deleted") and takes it out of the groups it was a member of.
func (s *Server) DeleteGroup(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[id]; !ok {
		return fmt.Errorf("msgraphfake: no group %s", id)
	}
	s.dropMemberEverywhere(id)
	delete(s.groups, id)
	s.tombs[id] = tomb{kind: "group", seq: s.next(), reason: "deleted"}
	return nil
}

// AddMember adds a user or a group to a group.
func (s *Server) AddMember(groupID, memberID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addMemberLocked(groupID, memberID)
}

func (s *Server) addMemberLocked(groupID, memberID string) error {
	g, ok := s.groups[groupID]
	if !ok {
		return fmt.Errorf("msgraphfake: no group %s", groupID)
	}
	if _, isUser := s.users[memberID]; !isUser {
		if _, isGroup := s.groups[memberID]; !isGroup {
			return fmt.Errorf("msgraphfake: no user or group %s", memberID)
		}
	}
	if g.members[memberID] {
		return nil
	}
	g.members[memberID] = true
	s.events = append(s.events, memberEvent{seq: s.next(), group: groupID, member: memberID, added: true})
	return nil
}

// RemoveMember takes a member out of a group.
func (s *Server) RemoveMember(groupID, memberID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return fmt.Errorf("msgraphfake: no group %s", groupID)
	}
	if !g.members[memberID] {
		return nil
	}
	delete(g.members, memberID)
	s.events = append(s.events, memberEvent{seq: s.next(), group: groupID, member: memberID, added: false})
	return nil
}

// SetMembers makes members the group's exact direct members.
func (s *Server) SetMembers(groupID string, members ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return fmt.Errorf("msgraphfake: no group %s", groupID)
	}
	want := map[string]bool{}
	for _, m := range members {
		want[m] = true
	}
	for _, m := range sortedKeys(g.members) {
		if !want[m] {
			delete(g.members, m)
			s.events = append(s.events, memberEvent{seq: s.next(), group: groupID, member: m, added: false})
		}
	}
	for _, m := range members {
		if err := s.addMemberLocked(groupID, m); err != nil {
			return err
		}
	}
	return nil
}

// User returns a user's current state.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return u.User, true
}

// Members returns a group's direct members, sorted.
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return nil
	}
	return sortedKeys(g.members)
}

// GrantPermission grants an application permission.
func (s *Server) GrantPermission(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms[p] = true
}

// RevokePermission takes an application permission away; requests that
// need it then answer 403 Authorization_RequestDenied.
func (s *Server) RevokePermission(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.perms, p)
}

// SetClientSecret replaces the accepted client secret (a rotation).
func (s *Server) SetClientSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
}

// AddCertificate registers another certificate on the application.
func (s *Server) AddCertificate(c *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs = append(s.certs, c)
}

// RevokeTokens makes every issued access token invalid (401).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// LastAssertion returns the last client assertion the token endpoint got.
func (s *Server) LastAssertion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAssertion
}

// Count returns how many requests reached an endpoint (inner batch
// requests included).
func (s *Server) Count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint]
}

// Counts returns a copy of every endpoint's count.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// HTTPRequests returns how many HTTP requests reached Graph (token
// requests and inner batch requests not counted).
func (s *Server) HTTPRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpRequests
}

// ResetCounts sets every count to zero.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.httpRequests = 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func trimV1(p string) string { return strings.TrimPrefix(p, "/v1.0") }
