package scim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/secret"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

// scimFixture is a SCIM server on a real store with one SCIM directory,
// no reconciler: what a request marks dirty stays visible.
type scimFixture struct {
	t        *testing.T
	st       *store.Store
	srv      *httptest.Server
	dir, tok string
	triggers atomic.Int64
}

func newSCIMFixture(t *testing.T, e testenv.Engine) *scimFixture {
	t.Helper()
	ctx := context.Background()
	f := &scimFixture{t: t, st: testenv.OpenStore(t, e), dir: "d1", tok: secret.NewToken("rst_scim_")}
	if err := f.st.CreateTeam(ctx, &store.Team{ID: "t1", Name: "Acme", Plan: store.PlanEnterprise, SSOStatus: "active", SSOProvider: "okta"}); err != nil {
		t.Fatal(err)
	}
	err := f.st.WithTx(ctx, func(tx *store.Tx) error {
		return tx.CreateDirectory(ctx, &store.Directory{ID: f.dir, TeamID: "t1", Type: "scim", TokenHash: secret.Hash(f.tok)})
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Options{Store: f.st, Trigger: func(context.Context, string) error { f.triggers.Add(1); return nil }})
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *scimFixture) do(want int, method, path, body string) (map[string]any, http.Header) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+"/scim/v2/"+f.dir+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m, resp.Header
}

// settle waits for the trigger loop to send what earlier writes asked
// for, then forgets every pending item, as a reconcile would.
func (f *scimFixture) settle() int64 {
	f.t.Helper()
	time.Sleep(50 * time.Millisecond)
	ctx := context.Background()
	err := f.st.WithTx(ctx, func(tx *store.Tx) error {
		items, err := tx.PendingDirty(ctx, f.dir)
		if err != nil {
			return err
		}
		return tx.ClearDirty(ctx, f.dir, items)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.triggers.Load()
}

// unchanged checks that nothing was marked dirty and no reconcile was
// asked for since settle returned triggers.
func (f *scimFixture) unchanged(what string, triggers int64) {
	f.t.Helper()
	time.Sleep(50 * time.Millisecond)
	n, err := f.st.CountDirty(context.Background(), f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	if n != 0 || f.triggers.Load() != triggers {
		f.t.Errorf("%s: %d items marked dirty, %d reconciles asked for; want none", what, n, f.triggers.Load()-triggers)
	}
}

func TestWritesThatChangeNothing(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newSCIMFixture(t, e)
			created, _ := f.do(201, "POST", "/Users", `{"schemas":["`+URNUser+`"],"userName":"ann@example.com","name":{"givenName":"Ann","familyName":"Lee"},
				"emails":[{"value":"ann@example.com","type":"work","primary":true}],"displayName":"Ann Lee","active":true}`)
			id := created["id"].(string)
			bob, _ := f.do(201, "POST", "/Users", `{"userName":"bob@example.com"}`)
			g, _ := f.do(201, "POST", "/Groups", `{"displayName":"Eng","members":[{"value":"`+id+`"}]}`)
			gid := g["id"].(string)
			got, h := f.do(200, "GET", "/Users/"+id, "")
			version, modified := h.Get("ETag"), got["meta"].(map[string]any)["lastModified"]
			before := f.settle()

			// Okta: the GET answer sent back whole, twice.
			body, _ := json.Marshal(got)
			for range 2 {
				put, h := f.do(200, "PUT", "/Users/"+id, string(body))
				if h.Get("ETag") != version || put["meta"].(map[string]any)["lastModified"] != modified {
					t.Fatalf("resent PUT answered %s %v, want %s %v", h.Get("ETag"), put["meta"], version, modified)
				}
			}
			f.unchanged("resent user PUT", before)
			// The same with Entra's string boolean and another spelling.
			f.do(200, "PATCH", "/Users/"+id, `{"Operations":[{"op":"Replace","path":"active","value":"True"},{"op":"replace","path":"name.givenName","value":"Ann"}]}`)
			f.do(200, "PATCH", "/Users/"+id, `{"Operations":[{"op":"add","path":"emails","value":[{"value":"ann@example.com","type":"work","primary":true}]}]}`)
			f.unchanged("user PATCH to the current values", before)
			// Group: PUT with its name and members, re-adding a member,
			// removing one that is not there, a rename to its name.
			_, h = f.do(200, "GET", "/Groups/"+gid, "")
			gversion := h.Get("ETag")
			f.do(200, "PUT", "/Groups/"+gid, `{"schemas":["`+URNGroup+`"],"id":"`+gid+`","displayName":"Eng","members":[{"value":"`+id+`"}]}`)
			f.do(200, "PUT", "/Groups/"+gid, `{"displayName":"Eng"}`) // members not named: kept
			f.do(204, "PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+id+`"}]}]}`)
			f.do(204, "PATCH", "/Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"`+bob["id"].(string)+`\"]"}]}`)
			f.do(204, "PATCH", "/Groups/"+gid, `{"Operations":[{"op":"Remove","path":"members","value":[{"value":"`+bob["id"].(string)+`"}]}]}`)
			f.do(204, "PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"Eng"}]}`)
			if _, h := f.do(200, "GET", "/Groups/"+gid, ""); h.Get("ETag") != gversion {
				t.Errorf("group version %s after writes that change nothing, want %s", h.Get("ETag"), gversion)
			}
			f.unchanged("group writes that change nothing", before)

			// Changes still write, once each.
			put, h := f.do(200, "PUT", "/Users/"+id, strings.Replace(string(body), `"Ann Lee"`, `"Ann L."`, 1))
			if h.Get("ETag") == version || put["displayName"] != "Ann L." {
				t.Fatalf("changing PUT = %s %v", h.Get("ETag"), put)
			}
			f.do(200, "PUT", "/Groups/"+gid, `{"displayName":"Eng","members":[{"value":"`+id+`"},{"value":"`+bob["id"].(string)+`"}]}`)
			if _, h := f.do(200, "GET", "/Groups/"+gid, ""); h.Get("ETag") == gversion {
				t.Errorf("a member-only PUT kept the group version %s", gversion)
			}
			time.Sleep(50 * time.Millisecond)
			n, err := f.st.CountDirty(context.Background(), f.dir)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 || f.triggers.Load() == before {
				t.Errorf("after two changes: %d items dirty (want ann and bob), %d reconciles asked for", n, f.triggers.Load()-before)
			}
		})
	}
}
