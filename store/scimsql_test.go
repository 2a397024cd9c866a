package store

import (
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/roster-dev/roster/internal/scimfilter"
)

// The mirror tables reduced to the columns the mappings use; unlike the
// real schema they allow NULL everywhere, to cover every absent attribute.
const schemaSQL = `
CREATE TABLE mirror_users (
  directory_id TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, user_name_lower TEXT,
  display_name TEXT, given_name TEXT, family_name TEXT, active BOOLEAN,
  created_at BIGINT, updated_at BIGINT, PRIMARY KEY (directory_id, id));
CREATE INDEX mirror_users_user_name ON mirror_users (directory_id, user_name_lower);
CREATE TABLE mirror_user_emails (
  directory_id TEXT NOT NULL, user_id TEXT NOT NULL, value_lower TEXT, type TEXT, is_primary BOOLEAN);
CREATE INDEX mirror_user_emails_value ON mirror_user_emails (directory_id, value_lower);
CREATE INDEX mirror_user_emails_user ON mirror_user_emails (directory_id, user_id);
CREATE TABLE mirror_groups (
  directory_id TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT, display_name_lower TEXT,
  created_at BIGINT, updated_at BIGINT, PRIMARY KEY (directory_id, id));
CREATE TABLE mirror_members (directory_id TEXT NOT NULL, group_id TEXT NOT NULL, member_id TEXT NOT NULL);
CREATE INDEX mirror_members_group ON mirror_members (directory_id, group_id, member_id);
`

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func testBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		return scimfilter.ParseBool(v)
	}
	return false, false
}

// lit renders a comparison value in filter syntax.
func lit(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	b, _ := json.Marshal(fmt.Sprint(v))
	return string(b)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

var (
	userNames = []any{"bjensen@example.com", "BJensen@Example.com", "jdoe@x.org", "Test_User_01", "a_b%c@x.com", "İsmail@x.com", "émile@x.fr", "\u212Aelvin@x", "kelvin@x", `back\slash`}
	names     = []any{nil, nil, "", "Babs Jensen", "BABS", "babs", "İsmail Kaya", "ismail kaya", "Émile", "émile", "a%b_c\\d", "\u212AELVIN", "Kelvin", "2011-05-13T04:42:34Z", "O'Brien"}
	bools     = []any{nil, true, false, "True", "false", "FALSE"}
	times     = []any{nil, "2010-01-23T04:56:22Z", "2011-05-13T04:42:34Z", "2011-05-13T04:42:34.123456Z", "2011-05-13T06:42:34+02:00", "2011-05-13T04:42:35Z", "2020-02-29T00:00:00.5Z"}
	emailVals = []any{nil, "bjensen@example.com", "BJensen@example.COM", "babs@jensen.org", "x_y@z.com", "İ@x.com", ""}
	emailType = []any{nil, "work", "Work", "home", "other"}
	extIDs    = []any{nil, "00u1abc", "00U1ABC", "ext%1", ""}
)

func randomUser(r *rand.Rand, i int) map[string]any {
	u := map[string]any{"id": fmt.Sprintf("u%03d", i), "userName": pick(r, userNames)}
	set := func(k string, v any) {
		if v != nil || r.IntN(4) == 0 { // sometimes an explicit null
			u[k] = v
		}
	}
	set("externalId", pick(r, extIDs))
	set("displayName", pick(r, names))
	set("title", pick(r, names))
	name := map[string]any{}
	if v := pick(r, names); v != nil {
		name["givenName"] = v
	}
	if v := pick(r, names); v != nil {
		name["familyName"] = v
	}
	if len(name) > 0 {
		u["name"] = name
	}
	set("active", pick(r, bools))
	meta := map[string]any{}
	if v := pick(r, times); v != nil {
		meta["created"] = v
	}
	if v := pick(r, times); v != nil {
		meta["lastModified"] = v
	}
	u["meta"] = meta
	var emails []any
	for n := r.IntN(4); n > 0; n-- {
		e := map[string]any{}
		for k, pool := range map[string][]any{"value": emailVals, "type": emailType, "primary": bools} {
			if v := pick(r, pool); v != nil {
				e[k] = v
			}
		}
		emails = append(emails, e)
	}
	if emails != nil || r.IntN(3) == 0 {
		u["emails"] = emails
	}
	if r.IntN(3) == 0 {
		u[enterprise] = map[string]any{"department": pick(r, names)}
	}
	return u
}

// null converts an absent value for the database.
func null(v any) any {
	if v == nil {
		return nil
	}
	return v
}

func foldOrNil(v any) any {
	if s, ok := v.(string); ok {
		return scimfilter.Fold(s)
	}
	return nil
}

func boolOrNil(v any) any {
	if b, ok := testBool(v); ok {
		return b
	}
	return nil
}

func timeOrNil(v any) any {
	if s, ok := v.(string); ok {
		if t, ok := scimfilter.ParseTime(s); ok {
			return t
		}
	}
	return nil
}

func sub(m map[string]any, k string) any {
	if m == nil {
		return nil
	}
	return m[k]
}

// storeUser writes u the way the store is expected to.
func storeUser(t *testing.T, db testDB, dir string, u map[string]any) {
	t.Helper()
	name, _ := u["name"].(map[string]any)
	meta, _ := u["meta"].(map[string]any)
	_, err := db.Exec(`INSERT INTO mirror_users VALUES (?,?,?,?,?,?,?,?,?,?)`,
		dir, u["id"], null(u["externalId"]), foldOrNil(u["userName"]), null(u["displayName"]),
		null(sub(name, "givenName")), null(sub(name, "familyName")), boolOrNil(u["active"]),
		timeOrNil(sub(meta, "created")), timeOrNil(sub(meta, "lastModified")))
	if err != nil {
		t.Fatal(err)
	}
	emails, _ := u["emails"].([]any)
	for _, e := range emails {
		em := e.(map[string]any)
		if _, err := db.Exec(`INSERT INTO mirror_user_emails VALUES (?,?,?,?,?)`,
			dir, u["id"], foldOrNil(em["value"]), null(em["type"]), boolOrNil(em["primary"])); err != nil {
			t.Fatal(err)
		}
	}
}

type attrGen struct {
	path   string
	values []any
	ops    []scimfilter.Op
}

var (
	strOps  = []scimfilter.Op{scimfilter.Eq, scimfilter.Ne, scimfilter.Co, scimfilter.Sw, scimfilter.Ew, scimfilter.Gt, scimfilter.Lt, scimfilter.Pr}
	boolOps = []scimfilter.Op{scimfilter.Eq, scimfilter.Ne, scimfilter.Pr}
	timeOps = []scimfilter.Op{scimfilter.Eq, scimfilter.Ne, scimfilter.Gt, scimfilter.Ge, scimfilter.Lt, scimfilter.Le, scimfilter.Pr}
)

func substrings(pool []any) []any {
	out := append([]any{}, pool...)
	for _, v := range pool {
		if s, ok := v.(string); ok && len(s) > 2 {
			rs := []rune(s)
			out = append(out, string(rs[:2]), string(rs[len(rs)-2:]), strings.ToUpper(string(rs[1:len(rs)-1])))
		}
	}
	return append(out, "i", "k", "%", "_", `\`, "a", "E")
}

var userAttrs = []attrGen{
	{"userName", substrings(userNames), strOps},
	{"displayName", substrings(names), strOps},
	{"name.givenName", substrings(names), strOps},
	{"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", substrings(names), strOps},
	{"title", substrings(names), strOps},
	{enterprise + ":department", names, strOps},
	{"id", []any{"u001", "U001", "u0", "01"}, strOps},
	{"externalId", substrings(extIDs), strOps},
	{"active", append(append([]any{}, bools...), "yes", 1.0), boolOps},
	{"meta.created", append(append([]any{}, times...), "2011", 5.0), timeOps},
	{"meta.lastModified", times, timeOps},
	{"emails", substrings(emailVals), strOps},
	{"emails.value", substrings(emailVals), strOps},
	{"emails.type", emailType, strOps},
	{"emails.primary", bools, boolOps},
}

var emailSubs = []attrGen{
	{"value", substrings(emailVals), strOps},
	{"type", emailType, strOps},
	{"primary", bools, boolOps},
	{"display", names, strOps},
}

func genCompare(r *rand.Rand, attrs []attrGen) string {
	a := pick(r, attrs)
	op := pick(r, a.ops)
	if op == scimfilter.Pr {
		return a.path + " pr"
	}
	v := pick(r, a.values)
	if (op == scimfilter.Eq || op == scimfilter.Ne) && r.IntN(15) == 0 {
		v = nil
	}
	k := r.IntN(3) // operators are case-insensitive
	return a.path + " " + strings.ToUpper(string(op))[:k] + string(op)[k:] + " " + lit(v)
}

func genFilter(r *rand.Rand, depth int, attrs []attrGen, inner []attrGen) string {
	if depth <= 0 {
		if inner != nil && r.IntN(4) == 0 {
			f := genFilter(r, 1+r.IntN(2), inner, nil)
			if r.IntN(2) == 0 {
				return "emails[" + f + "]"
			}
			return "emails[" + f + "]." + genCompare(r, emailSubs[:3])
		}
		return genCompare(r, attrs)
	}
	switch r.IntN(4) {
	case 0:
		return "not (" + genFilter(r, depth-1, attrs, inner) + ")"
	case 1:
		return genFilter(r, depth-1, attrs, inner) + " or " + genFilter(r, depth-1, attrs, inner)
	case 2:
		return "(" + genFilter(r, depth-1, attrs, inner) + " or " + genFilter(r, depth-1, attrs, inner) + ")"
	default:
		return genFilter(r, depth-1, attrs, inner) + " and " + genFilter(r, depth-1, attrs, inner)
	}
}

// testDB is a database of one engine for the translation tests, taking
// '?' placeholders on both.
type testDB struct {
	*sql.DB
	rebind func(string) string
}

func (d testDB) Exec(q string, args ...any) (sql.Result, error) {
	return d.DB.Exec(d.rebind(q), args...)
}

func (d testDB) Query(q string, args ...any) (*sql.Rows, error) {
	return d.DB.Query(d.rebind(q), args...)
}

// openDB makes the tables in an in-memory SQLite database, or in a fresh
// schema of the PostgreSQL test database.
func openDB(t *testing.T, engine string) testDB {
	t.Helper()
	dsn, driver := ":memory:", "sqlite"
	if engine == Postgres {
		driver, dsn = "pgx", postgresSchema(t)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, stmt := range strings.Split(schemaSQL, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	return testDB{DB: db, rebind: (&Store{engine: engine}).rebind}
}

// postgresSchema returns the URL of a fresh schema of the test database
// (ROSTER_TEST_DATABASE_URL), dropped after the test. This package's tests
// cannot use internal/testenv, which imports the store.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ROSTER_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("ROSTER_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("PostgreSQL is required (ROSTER_TEST_REQUIRE_SERVICES=1) but ROSTER_TEST_DATABASE_URL is not set")
		}
		t.Skip("PostgreSQL not available; set ROSTER_TEST_DATABASE_URL")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := make([]byte, 6)
	crand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("PostgreSQL at ROSTER_TEST_DATABASE_URL: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func engines(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, e := range []string{SQLite, Postgres} {
		t.Run(e, func(t *testing.T) { fn(t, e) })
	}
}

func queryIDs(t *testing.T, db testDB, q string, args []any) map[string]bool {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", q, args, err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkSQL runs filter through filterSQL on db and compares with scimfilter.Match over all
// resources. It reports whether the translation was exact.
func checkSQL(t *testing.T, db testDB, table, alias string, m sqlMapping, resources map[string]map[string]any, filter string) (exact bool) {
	t.Helper()
	e, err := scimfilter.Parse(filter)
	if err != nil {
		t.Fatalf("scimfilter.Parse(%q): %v", filter, err)
	}
	cond, args, exact := filterSQL(e, m)
	if n := strings.Count(cond, "?"); n != len(args) {
		t.Fatalf("%q: %d placeholders, %d args: %s", filter, n, len(args), cond)
	}
	q := "SELECT " + alias + ".id FROM " + table + " " + alias + " WHERE " + alias + ".directory_id = ? AND " + cond
	got := queryIDs(t, db, q, append([]any{"d1"}, args...))
	want := map[string]bool{}
	for id, res := range resources {
		if scimfilter.Match(e, res, nil) {
			want[id] = true
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("filter %q: SQL misses %s (%v)\n  sql: %s %v\n  resource: %v", filter, id, exact, cond, args, resources[id])
		}
	}
	post := map[string]bool{}
	for id := range got {
		if scimfilter.Match(e, resources[id], nil) {
			post[id] = true
		}
	}
	if len(post) != len(want) {
		t.Errorf("filter %q: post-filtered SQL %v != scimfilter.Match %v", filter, keys(post), keys(want))
	}
	if exact && len(got) != len(want) {
		extra := []string{}
		for id := range got {
			if !want[id] {
				extra = append(extra, id)
			}
		}
		t.Errorf("filter %q: exact SQL returns extra rows %v\n  sql: %s %v\n  resource: %v", filter, extra, cond, args, resources[extra[0]])
	}
	return exact
}

// TestFilterSQLUsers compares the translation of user filters with Match,
// on both engines.
func TestFilterSQLUsers(t *testing.T) { engines(t, testFilterSQLUsers) }

func testFilterSQLUsers(t *testing.T, engine string) {
	db := openDB(t, engine)
	r := rand.New(rand.NewPCG(1, 2))
	users := map[string]map[string]any{}
	for i := 0; i < 200; i++ {
		u := randomUser(r, i)
		users[u["id"].(string)] = u
		storeUser(t, db, "d1", u)
	}
	// Another directory with the same ids must never leak in.
	for i := 0; i < 50; i++ {
		storeUser(t, db, "d2", randomUser(r, i))
	}

	mustBeExact := []string{
		`userName eq "bjensen@example.com"`,
		`userName eq "BJENSEN@EXAMPLE.COM"`,
		`userName eq "İsmail@x.com"`,
		`userName sw "J" and not (active eq false)`,
		`userName co "_b%"`,
		`externalId eq "00u1abc"`,
		`id eq "u001"`,
		`emails[type eq "work"].value eq "bjensen@example.com"`,
		`emails[type eq "work" and primary eq true].value eq "bjensen@example.com"`,
		`emails[type eq "work"]`,
		`emails eq "babs@jensen.org"`,
		`emails ne "babs@jensen.org"`,
		`emails.value pr`,
		`displayName eq "Babs Jensen"`,
		`displayName co "a%b_c\\d"`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`meta.lastModified le "2011-05-13T04:42:34.123456Z"`,
		`meta.created ne "2011-05-13T06:42:34+02:00"`,
		`active eq "True"`,
		`active ne true`,
		`not (active pr)`,
		`not (displayName pr) or not (name.givenName sw "b")`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName EQ "jdoe@x.org"`,
	}
	for _, f := range mustBeExact {
		if !checkSQL(t, db, "mirror_users", "u", userSQL, users, f) {
			t.Errorf("%q: translation not exact", f)
		}
	}
	mustBeInexact := []string{
		`title pr or ` + enterprise + `:department eq "x"`,
		`userName sw "j" and title pr`,
		`not (title pr and userName eq "x")`,
		`displayName eq "émile"`,
		`externalId sw "00u"`,
		`userName gt "j"`,
		`meta.created eq "2011"`,
		`emails[display pr]`,
		`emails pr`,
	}
	for _, f := range mustBeInexact {
		if checkSQL(t, db, "mirror_users", "u", userSQL, users, f) {
			t.Errorf("%q: translation claims to be exact", f)
		}
	}

	exact, parsed := 0, 0
	const n = 1200
	for i := 0; i < n; i++ {
		f := genFilter(r, r.IntN(4), userAttrs, emailSubs)
		if _, err := scimfilter.Parse(f); err != nil {
			continue // e.g. "gt null"
		}
		parsed++
		if checkSQL(t, db, "mirror_users", "u", userSQL, users, f) {
			exact++
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("%d of %d random filters parsed, %d translated exactly", parsed, n, exact)
	if parsed < n/2 || exact < parsed/4 {
		t.Errorf("generator too weak: %d parsed, %d exact", parsed, exact)
	}
}

// TestFilterSQLGroups compares the translation of group filters with
// Match, on both engines.
func TestFilterSQLGroups(t *testing.T) { engines(t, testFilterSQLGroups) }

func testFilterSQLGroups(t *testing.T, engine string) {
	db := openDB(t, engine)
	r := rand.New(rand.NewPCG(3, 4))
	groups := map[string]map[string]any{}
	gnames := []any{"Engineering", "engineering", "ENG", "Sales & Marketing", "İnsan Kaynakları", "a_b%"}
	members := []string{"u1", "U1", "u2", "u3", "g9"}
	for i := 0; i < 60; i++ {
		g := map[string]any{"id": fmt.Sprintf("g%02d", i), "displayName": pick(r, gnames)}
		if r.IntN(2) == 0 {
			g["externalId"] = pick(r, extIDs)
		}
		var ms []any
		for _, m := range members {
			if r.IntN(3) == 0 {
				ms = append(ms, map[string]any{"value": m, "$ref": nil})
				if _, err := db.Exec(`INSERT INTO mirror_members VALUES ('d1', ?, ?)`, g["id"], m); err != nil {
					t.Fatal(err)
				}
			}
		}
		if ms != nil {
			g["members"] = ms
		}
		groups[g["id"].(string)] = g
		if _, err := db.Exec(`INSERT INTO mirror_groups VALUES ('d1', ?, ?, ?, NULL, NULL)`, g["id"], null(g["externalId"]), foldOrNil(g["displayName"])); err != nil {
			t.Fatal(err)
		}
	}
	attrs := []attrGen{
		{"displayName", substrings(gnames), strOps},
		{"externalId", extIDs, strOps},
		{"id", []any{"g01", "G01", "g0"}, strOps},
		{"members", []any{"u1", "U1", "u3", "nobody"}, []scimfilter.Op{scimfilter.Eq, scimfilter.Ne, scimfilter.Pr}},
		{"members.value", []any{"u1", "U1", "u3"}, []scimfilter.Op{scimfilter.Eq, scimfilter.Ne, scimfilter.Pr, scimfilter.Sw}},
	}
	for _, f := range []string{
		`displayName eq "Engineering"`,
		`displayName eq "İNSAN KAYNAKLARI"`,
		`members[value eq "u1"]`,
		`members[value eq "u1" or value eq "u2"]`,
		`members eq "U1"`,
		`displayName sw "eng" and members[value eq "u3"]`,
	} {
		if !checkSQL(t, db, "mirror_groups", "g", groupSQL, groups, f) {
			t.Errorf("%q: translation not exact", f)
		}
	}
	for i := 0; i < 1000; i++ {
		f := genFilter(r, r.IntN(3), attrs, nil)
		if _, err := scimfilter.Parse(f); err != nil {
			continue
		}
		checkSQL(t, db, "mirror_groups", "g", groupSQL, groups, f)
		if t.Failed() {
			break
		}
	}
}

func TestFilterSQLShapes(t *testing.T) {
	tests := []struct {
		filter string
		cond   string
		args   []any
		exact  bool
	}{
		{`userName eq "BJensen@Example.com"`, `u.user_name_lower = ?`, []any{"bjensen@example.com"}, true},
		{`externalId eq "00uABC"`, `u.external_id = ?`, []any{"00uABC"}, true},
		{`active eq "False"`, `u.active = ?`, []any{false}, true},
		{`userName sw "A_b" and not (active eq false)`, `(u.user_name_lower LIKE ? ESCAPE '\' AND NOT COALESCE(u.active = ?, 1=0))`, []any{`a\_b%`, false}, true},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `u.updated_at > ?`, []any{int64(1305261754000000)}, true},
		{`emails[type eq "work"].value eq "X@Y.com"`, `EXISTS (SELECT 1 FROM mirror_user_emails e WHERE (e.directory_id = u.directory_id AND e.user_id = u.id) AND (` + lowerSQL("e.type") + ` = ? AND e.value_lower = ?))`, []any{"work", "x@y.com"}, true},
		{`emails eq "x@y.com"`, `EXISTS (SELECT 1 FROM mirror_user_emails e WHERE (e.directory_id = u.directory_id AND e.user_id = u.id) AND e.value_lower = ?)`, []any{"x@y.com"}, true},
		{`title pr and userName eq "x"`, `u.user_name_lower = ?`, []any{"x"}, false},
		{`title pr or userName eq "x"`, `1=1`, nil, false},
		{`not (title pr and userName eq "x")`, `1=1`, nil, false},
		{`not (title pr or userName eq "x")`, `NOT COALESCE(u.user_name_lower = ?, 1=0)`, []any{"x"}, false},
		{`displayName pr`, `(u.display_name IS NOT NULL AND u.display_name <> '')`, nil, true},
	}
	for _, tc := range tests {
		e, err := scimfilter.Parse(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		cond, args, exact := filterSQL(e, userSQL)
		if cond != tc.cond || fmt.Sprint(args) != fmt.Sprint(tc.args) || exact != tc.exact {
			t.Errorf("filterSQL(%q) =\n  %s %v %v\nwant\n  %s %v %v", tc.filter, cond, args, exact, tc.cond, tc.args, tc.exact)
		}
	}
	e, _ := scimfilter.Parse(`members[value eq "id"]`)
	cond, args, exact := filterSQL(e, groupSQL)
	if want := `EXISTS (SELECT 1 FROM mirror_members m WHERE (m.directory_id = g.directory_id AND m.group_id = g.id) AND m.member_id = ?)`; cond != want || !exact || fmt.Sprint(args) != "[id]" {
		t.Errorf("members: %s %v %v", cond, args, exact)
	}
}

// FuzzFilterSQL checks that every parsed filter translates to a condition
// with as many placeholders as arguments, for users and groups.
func FuzzFilterSQL(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen@example.com"`,
		`emails[type eq "work" and primary eq true].value eq "x@y.com"`,
		`userName sw "j" and not (active eq false)`,
		`members[value eq "u1" or value eq "u2"] and displayName co "?"`,
		`displayName eq "it's ? here" or title pr`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := scimfilter.Parse(s)
		if err != nil {
			return
		}
		for _, m := range []sqlMapping{userSQL, groupSQL} {
			cond, args, _ := filterSQL(e, m)
			if strings.Count(cond, "?") != len(args) {
				t.Fatalf("filterSQL(%q): %q has %d args", s, cond, len(args))
			}
		}
	})
}
