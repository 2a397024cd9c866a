package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roster-dev/roster/config"
)

// benchConfig keeps the defaults except what a loopback receiver needs.
func benchConfig(c *config.Config) {
	c.Webhooks.AllowPrivateNetworks = true
	c.Webhooks.RetryInitial = config.Duration{Duration: 20 * time.Millisecond}
}

// lagReceiver verifies each delivery and records, for the first receipt
// of each event, the time from the event's occurred_at to its arrival.
// Paths name endpoints (/e/<n>), so one server serves many endpoints.
type lagReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	hooks    map[string]*standardwebhooks.Webhook // by path
	last     map[string]int64                     // last event seq per path
	lags     []time.Duration
	dups     int
	disorder int
	badSig   int
	total    atomic.Int64 // first receipts
	lastAt   time.Time
}

func newLagReceiver(tb testing.TB) *lagReceiver {
	rc := &lagReceiver{hooks: map[string]*standardwebhooks.Webhook{}, last: map[string]int64{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	tb.Cleanup(rc.srv.Close)
	return rc
}

func (rc *lagReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	rc.mu.Lock()
	wh := rc.hooks[r.URL.Path]
	rc.mu.Unlock()
	if wh == nil {
		// The create answer may reach the benchmark after the first
		// delivery.
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := wh.Verify(body, r.Header); err != nil {
		rc.mu.Lock()
		rc.badSig++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev struct {
		ID         string    `json:"id"`
		OccurredAt time.Time `json:"occurred_at"`
	}
	_ = json.Unmarshal(body, &ev)
	var seq int64
	fmt.Sscan(ev.ID, &seq)
	rc.mu.Lock()
	switch prev := rc.last[r.URL.Path]; {
	case seq == prev:
		rc.dups++
	case seq < prev:
		rc.disorder++
	default:
		rc.last[r.URL.Path] = seq
		rc.lags = append(rc.lags, now.Sub(ev.OccurredAt))
		rc.lastAt = now
		rc.total.Add(1)
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// addHook creates an endpoint at path on team and lets the receiver
// verify its deliveries.
func (rc *lagReceiver) addHook(r *Roster, team, path string) {
	r.T.Helper()
	out := r.MustAdmin(201, "POST", "/teams/"+team+"/webhooks", map[string]any{"url": rc.srv.URL + path})
	wh, err := standardwebhooks.NewWebhook(out["secret"].(string))
	if err != nil {
		r.T.Fatal(err)
	}
	rc.mu.Lock()
	rc.hooks[path] = wh
	rc.mu.Unlock()
}

// reset forgets the lags recorded so far (the warm-up's).
func (rc *lagReceiver) reset() {
	rc.mu.Lock()
	rc.lags = nil
	rc.mu.Unlock()
	rc.total.Store(0)
}

// scimLoad sends SCIM user creates at a fixed open-loop rate: a request
// is due every 1/rate s whether or not the earlier ones have answered
// (up to 256 in flight; a due request beyond that is counted as missed).
type scimLoad struct {
	client           *http.Client
	sent, failed     atomic.Int64
	missed           atomic.Int64
	inflight         chan struct{}
	wg               sync.WaitGroup
	prefix           string
	directories      []Directory
	firstErr         atomic.Value
	perDir           []atomic.Int64 // creates answered 201, by directory
	start, lastStart time.Time
}

func newSCIMLoad(prefix string, dirs ...Directory) *scimLoad {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	return &scimLoad{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, inflight: make(chan struct{}, 256),
		prefix: prefix, directories: dirs, perDir: make([]atomic.Int64, len(dirs))}
}

func (l *scimLoad) create(i int) {
	defer l.wg.Done()
	defer func() { <-l.inflight }()
	d := l.directories[i%len(l.directories)]
	name := fmt.Sprintf("%s%d", l.prefix, i)
	body, _ := json.Marshal(map[string]any{
		"schemas": []string{urnUser}, "userName": name, "active": true,
		"name":   map[string]any{"givenName": name, "familyName": "Bench"},
		"emails": []any{map[string]any{"value": name + "@acme.test", "type": "work", "primary": true}},
	})
	req, _ := http.NewRequest("POST", d.BaseURL+"/Users", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := l.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			err = fmt.Errorf("create user: %d", resp.StatusCode)
		}
	}
	if err != nil {
		l.failed.Add(1)
		l.firstErr.CompareAndSwap(nil, err.Error())
		return
	}
	l.sent.Add(1)
	l.perDir[i%len(l.directories)].Add(1)
}

// run sends rate creates per second for d, then waits for the answers.
func (l *scimLoad) run(rate int, d time.Duration) {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	l.start = time.Now()
	for i := range n {
		due := l.start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case l.inflight <- struct{}{}:
			l.wg.Add(1)
			go l.create(i)
		default:
			l.missed.Add(1)
		}
	}
	l.lastStart = time.Now()
	l.wg.Wait()
}

// burst sends n creates, round-robin over the directories, as fast as
// they are answered (up to 256 in flight).
func (l *scimLoad) burst(n int) {
	l.start = time.Now()
	for i := range n {
		l.inflight <- struct{}{}
		l.wg.Add(1)
		go l.create(i)
	}
	l.lastStart = time.Now()
	l.wg.Wait()
}

// waitFeedLen waits until the team's feed holds at least n events, or
// timeout, and returns its length.
func waitFeedLen(r *Roster, team string, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		got := len(feedIDs(r, team))
		if got >= n || time.Now().After(deadline) {
			if got < n {
				r.T.Logf("feed of %s has %d events after %v, want %d", team, got, timeout, n)
			}
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReceived waits until rc has want first receipts, or timeout; it
// returns false on timeout.
func waitReceived(rc *lagReceiver, want int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if rc.total.Load() >= want {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return rc.total.Load() >= want
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reportReceiver reports the receiver's counts; duplicates and disorder
// break the delivery contract, whatever the machine's speed.
func reportReceiver(b *testing.B, rc *lagReceiver) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.dups > 0 || rc.disorder > 0 || rc.badSig > 0 {
		b.Errorf("receiver saw %d duplicates, %d out of order, %d bad signatures", rc.dups, rc.disorder, rc.badSig)
	}
}

// BenchmarkWebhookLag sends SCIM creates at a fixed rate for 10 s to a
// team with one endpoint on a loopback receiver, and reports the delivery
// lag (the event's occurred_at, set as the reconciler plans the
// transaction that commits it, to the receiver reading the request) at
// p50, p99 and max.
func BenchmarkWebhookLag(b *testing.B) {
	for _, m := range Modes() {
		for _, rate := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/rate=%d", m.Name, rate), func(b *testing.B) {
				if b.N > 1 {
					b.Skip("run with -benchtime 1x: each run takes 10 s of load")
				}
				r := Start(b, m, benchConfig)
				d := r.NewSCIMTeam(nil)
				rc := newLagReceiver(b)
				rc.addHook(r, d.TeamID, "/e/0")
				// Warm up: the endpoint delivers the feed so far.
				addUsers(r, d, "warm", 5)
				if !waitReceived(rc, int64(len(feedIDs(r, d.TeamID))), 30*time.Second) {
					b.Fatalf("warm-up events not delivered in 30 s")
				}
				before := len(feedIDs(r, d.TeamID))
				rc.reset()

				load := newSCIMLoad("u", d)
				load.run(rate, 10*time.Second)
				sendTime := load.lastStart.Sub(load.start)
				// One member.added per create: wait for the reconciler to
				// have committed them all, then for their delivery.
				feed := waitFeedLen(r, d.TeamID, before+int(load.sent.Load()), 60*time.Second) - before
				caught := waitReceived(rc, int64(feed), 45*time.Second)
				rc.mu.Lock()
				lags := slices.Clone(rc.lags)
				rc.mu.Unlock()
				slices.Sort(lags)
				got := rc.total.Load()
				if !caught {
					b.Logf("only %d of %d events delivered within 45 s of the feed having them", got, feed)
				}
				b.ReportMetric(float64(load.sent.Load())/sendTime.Seconds(), "creates/s")
				b.ReportMetric(float64(load.missed.Load()+load.failed.Load()), "creates-missed")
				b.ReportMetric(float64(feed), "events")
				// Creates that timed out here may still have committed:
				// the feed now is what is due.
				b.ReportMetric(float64(max(0, int64(len(feedIDs(r, d.TeamID))-before)-got)), "undelivered")
				b.ReportMetric(ms(pct(lags, 0.50)), "p50-ms")
				b.ReportMetric(ms(pct(lags, 0.99)), "p99-ms")
				b.ReportMetric(ms(pct(lags, 1)), "max-ms")
				if e := load.firstErr.Load(); e != nil {
					b.Logf("first failed create: %v", e)
				}
				reportReceiver(b, rc)
			})
		}
	}
}

// BenchmarkWebhookEndpoints1000 creates 1,000 endpoints (100 on each of
// 10 teams) on one loopback receiver, then a burst of 20 SCIM creates per
// team, and reports the deliveries per second and the time from the
// burst's start until every endpoint has every event.
func BenchmarkWebhookEndpoints1000(b *testing.B) {
	const teams, perTeam, burst = 10, 100, 20
	for _, m := range Modes() {
		b.Run(m.Name, func(b *testing.B) {
			if b.N > 1 {
				b.Skip("run with -benchtime 1x")
			}
			r := Start(b, m, benchConfig)
			rc := newLagReceiver(b)
			dirs := make([]Directory, teams)
			for t := range teams {
				dirs[t] = r.NewSCIMTeam(nil)
				for e := range perTeam {
					rc.addHook(r, dirs[t].TeamID, fmt.Sprintf("/e/%d", t*perTeam+e))
				}
			}
			// Whatever the feeds hold already is delivered first.
			var before int64
			feeds := make([]int, teams)
			for t, d := range dirs {
				feeds[t] = len(feedIDs(r, d.TeamID))
				before += int64(feeds[t] * perTeam)
			}
			if !waitReceived(rc, before, 60*time.Second) {
				b.Fatalf("initial feeds not delivered in 60 s")
			}
			rc.reset()

			start := time.Now()
			load := newSCIMLoad("b", dirs...)
			load.burst(teams * burst)
			var want int64
			deadline := time.Now().Add(60 * time.Second)
			for t, d := range dirs {
				n := feeds[t] + int(load.perDir[t].Load())
				want += int64(waitFeedLen(r, d.TeamID, n, time.Until(deadline))-feeds[t]) * perTeam
			}
			caught := waitReceived(rc, want, 50*time.Second)
			rc.mu.Lock()
			end := rc.lastAt
			lags := slices.Clone(rc.lags)
			rc.mu.Unlock()
			slices.Sort(lags)
			got := rc.total.Load()
			if !caught {
				b.Logf("only %d of %d deliveries within 50 s", got, want)
				end = time.Now()
			}
			took := end.Sub(start)
			b.ReportMetric(float64(got)/took.Seconds(), "deliveries/s")
			b.ReportMetric(took.Seconds(), "s-to-catch-up")
			b.ReportMetric(float64(want), "deliveries-due")
			b.ReportMetric(float64(max(0, want-got)), "undelivered")
			b.ReportMetric(ms(pct(lags, 0.50)), "p50-ms")
			b.ReportMetric(ms(pct(lags, 0.99)), "p99-ms")
			if load.failed.Load() > 0 {
				b.Logf("%d creates failed: %v", load.failed.Load(), load.firstErr.Load())
			}
			reportReceiver(b, rc)
		})
	}
}
