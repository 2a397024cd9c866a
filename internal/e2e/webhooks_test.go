package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roster-dev/roster/config"
	"github.com/roster-dev/roster/internal/testenv"
)

// receiver is a webhook receiver that verifies every delivery with the
// Standard Webhooks reference library, against each secret it was told
// about (during a rotation both must verify, each on its own).
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	secrets []string
	answer  func(id string, n int) int // status for the n-th request (1-based) carrying id
	tries   map[string]int
	got     []string // webhook-ids answered 2xx, in order
	seen    []string // webhook-ids of every verified request, in order
	// hold, when set, is called (without the lock) before answering.
	hold     func(id string)
	bodies   map[string]string
	requests int
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{t: t, tries: map[string]int{}, bodies: map[string]string{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.secrets) == 0 {
		// The create answer (with the secret) may reach the test after
		// the first delivery: ask for a retry.
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.requests++
	rc.seen = append(rc.seen, id)
	for _, s := range rc.secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			rc.t.Errorf("secret: %v", err)
			continue
		}
		if err := wh.Verify(body, r.Header); err != nil {
			rc.t.Errorf("delivery %s: signature %q does not verify with a valid secret: %v", id, r.Header.Get("webhook-signature"), err)
		}
	}
	if hold := rc.hold; hold != nil {
		rc.mu.Unlock()
		hold(id)
		rc.mu.Lock()
	}
	rc.tries[id]++
	status := http.StatusNoContent
	if rc.answer != nil {
		status = rc.answer(id, rc.tries[id])
	}
	if status < 300 {
		rc.got = append(rc.got, id)
		rc.bodies[id] = string(body)
	}
	w.WriteHeader(status)
}

func (rc *receiver) setSecrets(s ...string) {
	rc.mu.Lock()
	rc.secrets = s
	rc.mu.Unlock()
}

func (rc *receiver) setAnswer(f func(id string, n int) int) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

func (rc *receiver) delivered() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

// hookConfig lets deliveries reach the loopback receiver and retries fast.
func hookConfig(c *config.Config) {
	c.Webhooks.AllowPrivateNetworks = true
	c.Webhooks.RetryInitial = config.Duration{Duration: 20 * time.Millisecond}
	c.Reconcile.SweepEvery = config.Duration{Duration: 200 * time.Millisecond}
}

// addUsers creates n SCIM users, each giving the team's feed events.
func addUsers(r *Roster, d Directory, prefix string, n int) {
	r.T.Helper()
	for i := range n {
		name := fmt.Sprintf("%s%d", prefix, i)
		resp := r.SCIM(d, "POST", "/Users", map[string]any{
			"schemas": []string{urnUser}, "userName": name, "active": true,
			"name":   map[string]any{"givenName": name, "familyName": "Test"},
			"emails": []any{map[string]any{"value": name + "@acme.test", "type": "work", "primary": true}},
		})
		if resp.Status != 201 {
			r.T.Fatalf("create user: %s", resp)
		}
	}
}

// feedIDs reads every event id of the team's feed, in order.
func feedIDs(r *Roster, team string) []string {
	r.T.Helper()
	var out []string
	after := ""
	for {
		page := r.MustAdmin(200, "GET", "/teams/"+team+"/events?limit=1000&after="+after, nil)
		evs := page["events"].([]any)
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			out = append(out, e.(map[string]any)["id"].(string))
		}
		after = page["next_cursor"].(string)
	}
}

func createHook(r *Roster, team, url string) (id, secret string) {
	r.T.Helper()
	out := r.MustAdmin(201, "POST", "/teams/"+team+"/webhooks", map[string]any{"url": url, "description": "test"})
	if out["state"] != "active" || !strings.HasPrefix(out["secret"].(string), "whsec_") {
		r.T.Fatalf("create webhook answered %v", out)
	}
	return out["id"].(string), out["secret"].(string)
}

// waitDelivered waits until the team's feed holds at least min events
// and rc got exactly the feed, in order.
func waitDelivered(r *Roster, rc *receiver, team string, min int) []string {
	r.T.Helper()
	var want []string
	Eventually(r.T, 20*time.Second, "every event delivered in order", func() (bool, string) {
		want = feedIDs(r, team)
		got := rc.delivered()
		return len(want) >= min && strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprintf("got %v, want %v (at least %d)", got, want, min)
	})
	return want
}

// waitFeed waits until the team's feed holds at least n events.
func waitFeed(r *Roster, team string, n int) []string {
	r.T.Helper()
	var ids []string
	Eventually(r.T, 10*time.Second, "events in the feed", func() (bool, string) {
		ids = feedIDs(r, team)
		return len(ids) >= n, fmt.Sprintf("%d events, want %d", len(ids), n)
	})
	return ids
}

func TestWebhooks(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			r := Start(t, m, hookConfig)
			d := r.NewSCIMTeam(nil)

			t.Run("order, retries and rotation", func(t *testing.T) {
				rc := newReceiver(t)
				// The 3rd event fails 4 times (500, 503, 429, 500), then passes.
				third := ""
				rc.setAnswer(func(id string, n int) int {
					if third == "" && len(rc.got) == 2 {
						third = id
					}
					if id == third && n <= 4 {
						return []int{500, 503, 429, 500}[n-1]
					}
					return 204
				})
				addUsers(r, d, "ord", 3)
				waitFeed(r, d.TeamID, 3)
				id, secret := createHook(r, d.TeamID, rc.srv.URL+"/hook?token=abc")
				rc.setSecrets(secret)
				got := waitDelivered(r, rc, d.TeamID, 3)
				rc.mu.Lock()
				tries := rc.tries[third]
				rc.mu.Unlock()
				if len(got) < 3 || tries != 5 {
					t.Fatalf("third event %q tried %d times (want 5); delivered %v", third, tries, got)
				}
				// Each body is the event as the feed shows it.
				first := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/events?limit=1", nil)["events"].([]any)[0]
				var body map[string]any
				if err := json.Unmarshal([]byte(rc.bodies[got[0]]), &body); err != nil {
					t.Fatal(err)
				}
				like(t, "first body", body, mustJSON(t, first))

				// Rotation: the old and the new secret both verify each delivery.
				rot := r.MustAdmin(200, "POST", "/teams/"+d.TeamID+"/webhooks/"+id+"/rotate-secret", nil)
				newSecret := rot["secret"].(string)
				if newSecret == secret || rot["previous_secret_expires_at"] == nil {
					t.Fatalf("rotate answered %v", rot)
				}
				rc.setSecrets(secret, newSecret)
				n := len(feedIDs(r, d.TeamID))
				addUsers(r, d, "rot", 2)
				waitDelivered(r, rc, d.TeamID, n+2)

				// The receiver has the last event a moment before roster
				// stores its 2xx.
				ids := feedIDs(r, d.TeamID)
				var hook map[string]any
				Eventually(t, 5*time.Second, "cursor at the last event", func() (bool, string) {
					hook = r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/webhooks/"+id, nil)
					return hook["cursor"] == ids[len(ids)-1], fmt.Sprint(hook)
				})
				if hook["state"] != "active" || hook["secret"] != nil {
					t.Fatalf("endpoint after delivery: %v", hook)
				}
				if lag := hook["lag"].(map[string]any); lag["events"] != 0.0 {
					t.Fatalf("lag %v, want none", lag)
				}
				if !strings.Contains(hook["last_error"].(string), "500") {
					t.Errorf("last_error %q, want the last failure kept", hook["last_error"])
				}
				// The delivery log, newest first, with the failed attempts.
				log := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/webhooks/"+id+"/deliveries?limit=100", nil)["deliveries"].([]any)
				var statuses []string
				for _, e := range log {
					e := e.(map[string]any)
					if e["event_id"] == third {
						statuses = append(statuses, strconv.Itoa(int(e["status"].(float64))))
					}
				}
				if strings.Join(statuses, ",") != "204,500,429,503,500" {
					t.Errorf("attempts on event %s, newest first: %v", third, statuses)
				}
				page := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/webhooks/"+id+"/deliveries?limit=2", nil)
				if len(page["deliveries"].([]any)) != 2 || page["next_cursor"] == "" {
					t.Errorf("first page of 2: %v", page)
				}
				next := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/webhooks/"+id+"/deliveries?limit=2&cursor="+page["next_cursor"].(string), nil)
				if a, b := page["deliveries"].([]any)[1].(map[string]any), next["deliveries"].([]any)[0].(map[string]any); a["id"] == b["id"] {
					t.Errorf("pages overlap at %v", a["id"])
				}

				// Replay from the first event re-sends the rest, in order.
				before := len(rc.delivered())
				r.MustAdmin(200, "POST", "/teams/"+d.TeamID+"/webhooks/"+id+"/replay", map[string]any{"after": ids[0]})
				Eventually(t, 10*time.Second, "replayed", func() (bool, string) {
					got := rc.delivered()[before:]
					return strings.Join(got, ",") == strings.Join(ids[1:], ","), fmt.Sprintf("%v", got)
				})
				mresp, err := http.Get(r.URL + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				mb, _ := io.ReadAll(mresp.Body)
				mresp.Body.Close()
				for _, want := range []string{`roster_webhook_deliveries_total{result="delivered"}`, `roster_webhook_deliveries_total{result="retry"}`,
					`roster_webhook_delivery_lag_seconds_count`, `roster_webhook_endpoints{state="active"} 1`} {
					if !strings.Contains(string(mb), want) {
						t.Errorf("/metrics has no %s", want)
					}
				}
				r.MustAdmin(204, "DELETE", "/teams/"+d.TeamID+"/webhooks/"+id, nil)
				if resp := r.Admin("GET", "/teams/"+d.TeamID+"/webhooks/"+id, nil); resp.Status != 404 {
					t.Errorf("deleted endpoint: %s", resp)
				}
			})

			t.Run("a failing endpoint does not hold back another", func(t *testing.T) {
				bad, good := newReceiver(t), newReceiver(t)
				bad.setAnswer(func(string, int) int { return 500 })
				badID, bs := createHook(r, d.TeamID, bad.srv.URL)
				bad.setSecrets(bs)
				_, gs := createHook(r, d.TeamID, good.srv.URL)
				good.setSecrets(gs)
				n := len(feedIDs(r, d.TeamID))
				addUsers(r, d, "iso", 3)
				waitDelivered(r, good, d.TeamID, n+3)
				hook := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/webhooks/"+badID, nil)
				if hook["state"] != "failing" || hook["cursor"] != "" || hook["lag"].(map[string]any)["events"].(float64) < 3 {
					t.Fatalf("failing endpoint: %v", hook)
				}
				r.MustAdmin(204, "DELETE", "/teams/"+d.TeamID+"/webhooks/"+badID, nil)
			})

			t.Run("410 disables, enable resumes", func(t *testing.T) {
				rc := newReceiver(t)
				rc.setAnswer(func(string, int) int { return 410 })
				id, s := createHook(r, d.TeamID, rc.srv.URL)
				rc.setSecrets(s)
				Eventually(t, 10*time.Second, "disabled", func() (bool, string) {
					h := r.MustAdmin(200, "GET", "/teams/"+d.TeamID+"/webhooks/"+id, nil)
					return h["state"] == "disabled", fmt.Sprint(h)
				})
				before := len(feedIDs(r, d.TeamID))
				addUsers(r, d, "dis", 1)
				waitFeed(r, d.TeamID, before+1)
				time.Sleep(300 * time.Millisecond)
				rc.mu.Lock()
				n := rc.requests
				rc.mu.Unlock()
				if n != 1 {
					t.Fatalf("%d requests to a disabled endpoint, want only the one answered 410", n)
				}
				rc.setAnswer(nil)
				h := r.MustAdmin(200, "POST", "/teams/"+d.TeamID+"/webhooks/"+id+"/enable", nil)
				if h["state"] != "active" {
					t.Fatalf("enable answered %v", h)
				}
				// Everything, also the webhook.disabled event, arrives.
				waitDelivered(r, rc, d.TeamID, before+1)
				disabled := 0
				for _, b := range rc.bodies {
					if strings.Contains(b, `"type":"webhook.disabled"`) && strings.Contains(b, id) {
						disabled++
					}
				}
				if disabled != 1 {
					t.Errorf("%d webhook.disabled events for the endpoint delivered, want 1", disabled)
				}
			})

			t.Run("stream resumes with Last-Event-ID", func(t *testing.T) {
				ids := waitFeed(r, d.TeamID, 5)
				got := readStream(t, r, "/teams/"+d.TeamID+"/events/stream?after="+ids[0], "", 2)
				if got[0] != ids[1] || got[1] != ids[2] {
					t.Fatalf("stream from %s: %v, want %v", ids[0], got, ids[1:3])
				}
				// Last-Event-ID wins over ?after=.
				got = readStream(t, r, "/teams/"+d.TeamID+"/events/stream?after="+ids[0], ids[3], 1)
				if got[0] != ids[4] {
					t.Fatalf("resumed stream: %v, want %s", got, ids[4])
				}
				// A live event reaches an idle stream.
				last := ids[len(ids)-1]
				done := make(chan []string, 1)
				go func() { done <- readStream(t, r, "/teams/"+d.TeamID+"/events/stream", last, 1) }()
				time.Sleep(200 * time.Millisecond)
				addUsers(r, d, "live", 1)
				select {
				case got := <-done:
					if n, _ := strconv.Atoi(got[0]); n <= mustAtoi(t, last) {
						t.Fatalf("live event %v, want after %s", got, last)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no live event on the stream")
				}
			})
		})
	}
}

func TestWebhookURLRefused(t *testing.T) {
	r := Start(t, Modes()[0])
	d := r.NewSCIMTeam(nil)
	for _, url := range []string{"http://127.0.0.1:9/x", "http://localhost:9/x", "https://10.1.2.3/x", "https://169.254.169.254/latest", "http://example.com/x", "ftp://x"} {
		resp := r.Admin("POST", "/teams/"+d.TeamID+"/webhooks", map[string]any{"url": url})
		if resp.Status != 400 || !strings.Contains(resp.String(), `"invalid_request"`) {
			t.Errorf("create with %s: %s, want 400", url, resp)
		}
	}
	resp := r.Admin("POST", "/teams/"+d.TeamID+"/webhooks", map[string]any{"url": "http://127.0.0.1:9/x"})
	if !strings.Contains(resp.String(), "allow_private_networks") {
		t.Errorf("loopback refusal should name the setting: %s", resp)
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustAtoi(t testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readStream opens the event stream and returns the ids of the first n
// events it sends.
func readStream(t testing.TB, r *Roster, path, lastEventID string, n int) []string {
	req, _ := http.NewRequest("GET", r.URL+"/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Errorf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		return nil
	}
	var ids []string
	id := ""
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			var ev map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil || ev["id"] != id {
				t.Errorf("stream data %q for id %s: %v", line, id, err)
			}
			ids = append(ids, id)
			if len(ids) == n {
				return ids
			}
		}
	}
	t.Errorf("stream ended after %v: %v", ids, sc.Err())
	return ids
}

// TestWebhookCrashMidDelivery kills roster with SIGKILL while a delivery is
// in flight, restarts it, and checks the receiver got the whole feed in
// order: no gap, and no event twice except the one in flight at the kill,
// with the same webhook-id.
func TestWebhookCrashMidDelivery(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			dataDir := t.TempDir()
			args := []string{"--data-dir", dataDir}
			if db := m.Database(t); db != "" {
				args = append(args, "--database-url", db, "--redis-url", m.Redis(t))
			}
			cfg := filepath.Join(t.TempDir(), "roster.yaml")
			yaml := "queue:\n  namespace: hookcrash" + testenv.RandomHex(4) + "\nwebhooks:\n  retry_initial: 20ms\nreconcile:\n  sweep_every: 200ms\n"
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", cfg)
			env := []string{"ROSTER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true"}

			a := startProc(t, env, args...)
			r := a.client(t)
			d := r.NewSCIMTeam(nil)
			addUsers(r, d, "crash", 20)
			waitFeed(r, d.TeamID, 20)

			rc := newReceiver(t)
			inFlight := make(chan string, 1)
			release := make(chan struct{})
			var once sync.Once
			rc.hold = func(id string) {
				rc.mu.Lock()
				n := len(rc.got)
				rc.mu.Unlock()
				if n == 8 {
					once.Do(func() {
						inFlight <- id
						<-release // answer only after roster died
					})
				}
			}
			_, secret := createHook(r, d.TeamID, rc.srv.URL)
			rc.setSecrets(secret)
			var held string
			select {
			case held = <-inFlight:
			case <-time.After(20 * time.Second):
				t.Fatal("no delivery in flight")
			}
			a.kill(syscall.SIGKILL)
			close(release)

			b := startProc(t, env, args...)
			r = b.client(t)
			d.BaseURL = strings.Replace(d.BaseURL, a.addr, b.addr, 1)
			addUsers(r, d, "after", 3)
			want := waitFeed(r, d.TeamID, 23)
			Eventually(t, 30*time.Second, "the whole feed delivered", func() (bool, string) {
				got := rc.delivered()
				return len(got) > 0 && got[len(got)-1] == want[len(want)-1], fmt.Sprintf("%d of %d", len(got), len(want))
			})
			rc.mu.Lock()
			seen := append([]string(nil), rc.seen...)
			rc.mu.Unlock()
			// Collapse the one allowed repeat: the held event, sent again
			// right after the restart.
			var dedup []string
			repeats := 0
			for i, id := range seen {
				if i > 0 && id == seen[i-1] {
					repeats++
					if id != held {
						t.Errorf("event %s sent twice, but %s was the one in flight", id, held)
					}
					continue
				}
				dedup = append(dedup, id)
			}
			if strings.Join(dedup, ",") != strings.Join(want, ",") {
				t.Fatalf("requests %v\nwant the feed %v", seen, want)
			}
			// The held event was answered after the kill, so roster never
			// stored its 2xx: it must come once more, with the same id.
			if repeats != 1 {
				t.Errorf("%d repeats, want exactly the held event once more: %v", repeats, seen)
			}
		})
	}
}
