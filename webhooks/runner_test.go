package webhooks

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rig is one endpoint with its receiver, store, clock and runner.
type rig struct {
	t      *testing.T
	clk    *fakeClock
	st     *memStore
	rc     *receiver
	ep     *Endpoint
	runner *Runner
	logs   *bytes.Buffer
}

func newRig(t *testing.T, types ...string) *rig {
	t.Helper()
	clk := newFakeClock()
	secret := NewSecret()
	st := newMemStore()
	st.add(types...)
	rc := newReceiver(t, clk.Now, secret)
	ep := &Endpoint{ID: "wh_1", TeamID: "t1", URL: rc.URL(), Keys: Keys{Current: secret}}
	st.setState(ep.ID, State{Status: Active})
	logs := &bytes.Buffer{}
	r := &Runner{
		Client: NewClient(Options{AllowPrivateNetworks: true, Now: clk.Now, Timeout: 2 * time.Second}),
		Policy: Policy{Rand: fixedRand(0)},
		Logger: slog.New(slog.NewJSONHandler(&syncWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return &rig{t: t, clk: clk, st: st, rc: rc, ep: ep, runner: r, logs: logs}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// run reloads the endpoint's state from the store, as a worker would, and
// runs once.
func (g *rig) run() Result {
	g.t.Helper()
	g.ep.State = g.st.state(g.ep.ID)
	res, err := g.runner.Run(context.Background(), g.ep, g.st, g.st)
	if err != nil {
		g.t.Fatalf("Run: %v", err)
	}
	return res
}

// drive runs until the endpoint is caught up or disabled, moving the clock
// to each RetryAt instead of sleeping.
func (g *rig) drive() {
	g.t.Helper()
	for range 1000 {
		res := g.run()
		switch {
		case g.ep.State.Status == Disabled:
			return
		case res.More:
		case !res.RetryAt.IsZero():
			g.clk.Set(res.RetryAt)
		default:
			return
		}
	}
	g.t.Fatal("not settled after 1000 runs")
}

func (g *rig) receivedIDs() []string {
	var ids []string
	for _, d := range g.rc.deliveries() {
		ids = append(ids, d.ID)
	}
	return ids
}

func ids(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// Order is kept through a receiver that fails the 3rd event 4 times: the
// 4th is not sent before the 3rd got its 2xx, and each 2xx is stored
// before the next event goes out.
func TestRunOrderThroughFailures(t *testing.T) {
	g := newRig(t, "member.added", "member.added", "member.added", "member.updated", "member.removed", "group.created")
	var mu sync.Mutex
	var durable []string // the stored cursor when each request arrived
	fails := 0
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		durable = append(durable, g.st.state("wh_1").Cursor)
		if d.ID != "3" || fails == 4 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fails++
		switch fails {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 3:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case 4:
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		}
	}

	first := g.run()
	if first.Delivered != 2 || first.RetryAt.IsZero() || g.ep.State.Status != Failing || g.ep.State.Cursor != "2" {
		t.Fatalf("first run: %+v, state %+v; want 2 delivered, failing at cursor 2 with a retry time", first, g.ep.State)
	}
	if want := g.clk.Now().Add(time.Second); first.RetryAt.Before(want) || first.RetryAt.After(want.Add(time.Second)) {
		t.Errorf("first retry at %v, want about 1s after the failure (%v)", first.RetryAt, want)
	}
	// Running early sends nothing.
	if res := g.run(); res.Delivered != 0 || len(g.rc.deliveries()) != 3 || !res.RetryAt.Equal(first.RetryAt) {
		t.Fatalf("run before the retry time: %+v after %d requests; want nothing sent", res, len(g.rc.deliveries()))
	}
	g.drive()

	want := []string{"1", "2", "3", "3", "3", "3", "3", "4", "5", "6"}
	if got := g.receivedIDs(); !slices.Equal(got, want) {
		t.Fatalf("receiver saw webhook-ids %v, want %v", got, want)
	}
	wantDurable := []string{"", "1", "2", "2", "2", "2", "2", "3", "4", "5"}
	if !slices.Equal(durable, wantDurable) {
		t.Fatalf("stored cursor at each request %v, want %v", durable, wantDurable)
	}
	g.rc.requireVerified()
	if s := g.st.state("wh_1"); s.Status != Active || s.Cursor != "6" || s.Attempts != 0 || !s.FailingSince.IsZero() {
		t.Fatalf("final state %+v, want active at cursor 6 with no failure record", s)
	}

	// The delivery log holds every attempt; the retries of event 3 wait
	// 1s, 2s, 7s (the receiver's Retry-After over 4s), 8s.
	log := g.st.attemptsOf("wh_1")
	if len(log) != 10 {
		t.Fatalf("%d attempts logged, want 10", len(log))
	}
	var three []Attempt
	for _, a := range log {
		if a.EventID == "3" {
			three = append(three, a)
		}
	}
	wantOutcome := []Outcome{Retry, Retry, Retry, Retry, Delivered}
	wantStatus := []int{500, 503, 429, 0, 204}
	for i, a := range three {
		if a.Outcome != wantOutcome[i] || a.StatusCode != wantStatus[i] {
			t.Errorf("attempt %d on event 3: %v %d (%s), want %v %d", i, a.Outcome, a.StatusCode, a.Error, wantOutcome[i], wantStatus[i])
		}
	}
	for i, delay := range []time.Duration{time.Second, 2 * time.Second, 7 * time.Second, 8 * time.Second} {
		gap := three[i+1].At.Sub(three[i].End())
		if gap < delay || gap > delay+time.Second {
			t.Errorf("wait before retry %d = %v, want %v", i+1, gap, delay)
		}
	}
	// Each retry is stamped afresh and signed again; the id stays.
	if three[0].At.Equal(three[4].At) {
		t.Error("retries carry the first attempt's timestamp")
	}
}

// One endpoint failing for good does not hold back another on the same
// feed.
func TestRunTwoEndpoints(t *testing.T) {
	g := newRig(t, "member.added", "member.added", "member.added")
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }
	healthy := newReceiver(t, g.clk.Now, g.ep.Keys.Current)
	other := &Endpoint{ID: "wh_2", TeamID: "t1", URL: healthy.URL(), Keys: g.ep.Keys}
	g.st.setState(other.ID, State{Status: Active})

	for range 20 {
		g.run()
		g.clk.Add(10 * time.Second)
		other.State = g.st.state(other.ID)
		if _, err := g.runner.Run(context.Background(), other, g.st, g.st); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.receivedIDs(); len(got) < 5 || slices.ContainsFunc(got, func(id string) bool { return id != "1" }) {
		t.Fatalf("failing endpoint saw %v, want only retries of event 1", got)
	}
	var got []string
	for _, d := range healthy.deliveries() {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, ids(1, 3)) || g.st.state("wh_2").Cursor != "3" {
		t.Fatalf("healthy endpoint saw %v at cursor %q, want events 1 to 3 once each", got, g.st.state("wh_2").Cursor)
	}
}

// 410 Gone disables at once; enabling resumes from the cursor, and the
// feed still has everything missed meanwhile.
func TestRunGoneDisablesThenEnable(t *testing.T) {
	g := newRig(t, "member.added", "member.added", "member.added")
	var gone atomic.Bool
	gone.Store(true)
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) {
		if d.ID == "2" && gone.Load() {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(200)
	}
	res := g.run()
	s := g.st.state("wh_1")
	if res.Delivered != 1 || !res.RetryAt.IsZero() || s.Status != Disabled || s.Cursor != "1" || s.DisabledReason != "the receiver answered 410 Gone" {
		t.Fatalf("run: %+v, state %+v; want 1 delivered then disabled at cursor 1 by the 410", res, s)
	}
	g.clk.Add(time.Hour)
	g.st.add("member.removed", "member.added") // the feed goes on while disabled
	if res := g.run(); res.Delivered != 0 || len(g.rc.deliveries()) != 2 {
		t.Fatalf("a disabled endpoint was sent to: %+v", res)
	}
	if !strings.Contains(g.logs.String(), `"msg":"webhook endpoint disabled"`) {
		t.Errorf("no log line for the disabling:\n%s", g.logs)
	}

	gone.Store(false)
	g.st.setState("wh_1", s.Enabled())
	g.drive()
	if got, want := g.receivedIDs(), []string{"1", "2", "2", "3", "4", "5"}; !slices.Equal(got, want) {
		t.Fatalf("receiver saw %v, want %v", got, want)
	}
	if s := g.st.state("wh_1"); s.Status != Active || s.Cursor != "5" {
		t.Fatalf("after enable: %+v, want active at cursor 5", s)
	}
	g.rc.requireVerified()
}

// A receiver that never answers 2xx is retried for 3 days, then the
// endpoint is disabled; later events are never sent meanwhile.
func TestRunGivesUpAfterThreeDays(t *testing.T) {
	g := newRig(t, "member.added", "member.added")
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }
	start := g.clk.Now()
	g.drive()
	s := g.st.state("wh_1")
	if s.Status != Disabled || s.Cursor != "" || s.Attempts != 84 || !strings.Contains(s.DisabledReason, "kept failing for 72h") {
		t.Fatalf("state %+v, want disabled before event 1 after 84 attempts", s)
	}
	got := g.rc.deliveries()
	if len(got) != 84 || slices.ContainsFunc(got, func(d delivery) bool { return d.ID != "1" }) {
		t.Fatalf("receiver got %d requests (%v...), want 84, all for event 1", len(got), g.receivedIDs()[:3])
	}
	last := got[len(got)-1].At
	if span := last.Sub(start); span < 72*time.Hour || span > 72*time.Hour+time.Minute {
		t.Errorf("last attempt %v after the first, want 72h", span)
	}
	// The receiver saw each attempt stamped with its own time, signed.
	g.rc.requireVerified()
	logs := g.logs.String()
	for _, msg := range []string{"webhook endpoint failing", "webhook delivery failed again", "webhook endpoint disabled"} {
		if !strings.Contains(logs, `"msg":"`+msg+`"`) {
			t.Errorf("no %q log line", msg)
		}
	}
	if raw := strings.TrimPrefix(g.ep.Keys.Current.Reveal(), "whsec_"); strings.Contains(logs, raw[:16]) {
		t.Fatal("the secret shows in the logs")
	}
	for _, a := range g.st.attemptsOf("wh_1") {
		if strings.Contains(a.Error, g.ep.Keys.Current.Reveal()[6:20]) {
			t.Fatalf("the secret shows in an attempt's error %q", a.Error)
		}
	}
}

// During a rotation every delivery verifies with the old and the new
// secret; after 24 h only the new one verifies.
func TestRunRotation(t *testing.T) {
	g := newRig(t, "member.added", "member.added", "member.added", "member.added")
	old := g.ep.Keys.Current
	g.run() // events 1..4 with the old secret alone
	g.st.add("member.added", "member.added")

	g.ep.Keys = g.ep.Keys.Rotate(g.clk.Now())
	g.rc.setSecrets(old, g.ep.Keys.Current)
	g.clk.Add(23 * time.Hour)
	g.run() // events 5, 6: both secrets valid
	g.st.add("member.added")
	g.clk.Add(time.Hour) // the overlap is over
	g.run()              // event 7

	got := g.rc.deliveries()
	if len(got) != 7 {
		t.Fatalf("receiver got %d requests, want 7", len(got))
	}
	for i, d := range got {
		sigs := len(strings.Split(d.Signature, " "))
		var want []bool
		switch {
		case i < 4:
			want = []bool{true}
		case i < 6:
			want = []bool{true, true}
		default:
			want = []bool{false, true}
		}
		if !slices.Equal(d.Verified, want) || sigs != len(want)-boolCount(want, false) {
			t.Errorf("delivery %d (event %s): verified with [old new] = %v and %d signatures, want %v", i, d.ID, d.Verified, sigs, want)
		}
	}
}

func boolCount(bs []bool, v bool) int {
	n := 0
	for _, b := range bs {
		if b == v {
			n++
		}
	}
	return n
}

// Events of other types move the cursor without a request, and that move
// is stored before the next request.
func TestRunSkipsOtherTypes(t *testing.T) {
	g := newRig(t, "member.added", "group.created", "group.renamed", "member.removed", "group.deleted", "group.created", "group.created", "group.deleted")
	g.ep.EventTypes = []string{"member.*"}
	var mu sync.Mutex
	var durable []string
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		durable = append(durable, g.st.state("wh_1").Cursor)
		w.WriteHeader(200)
	}
	g.runner.PageSize = 3 // the skipping spans pages
	res := g.run()
	if !slices.Equal(g.receivedIDs(), []string{"1", "4"}) || !slices.Equal(durable, []string{"", "3"}) {
		t.Fatalf("received %v with stored cursors %v, want [1 4] with [\"\" 3]", g.receivedIDs(), durable)
	}
	if res.Delivered != 2 || res.Skipped != 6 || g.st.state("wh_1").Cursor != "8" {
		t.Fatalf("result %+v, cursor %q; want 2 delivered, 6 skipped, cursor 8", res, g.st.state("wh_1").Cursor)
	}
	if n := len(g.st.attemptsOf("wh_1")); n != 2 {
		t.Fatalf("%d attempts logged, want 2 (skips are not attempts)", n)
	}
}

func TestRunMaxEvents(t *testing.T) {
	g := newRig(t, "member.added", "member.added", "member.added", "member.added", "member.added")
	g.runner.MaxEvents = 2
	var runs []Result
	for range 10 {
		res := g.run()
		runs = append(runs, res)
		if !res.More {
			break
		}
	}
	if len(runs) != 3 || runs[0].Delivered != 2 || runs[1].Delivered != 2 || runs[2].Delivered != 1 || runs[2].More {
		t.Fatalf("runs %+v, want 2, 2 and 1 deliveries, the last with nothing more", runs)
	}
	if !slices.Equal(g.receivedIDs(), ids(1, 5)) {
		t.Fatalf("received %v", g.receivedIDs())
	}
}

// An admin replay while a request is in flight wins: the run stops with
// ErrStateChanged, and the next run sends from the replayed cursor with the
// same webhook-ids.
func TestRunStateChangedMeanwhile(t *testing.T) {
	g := newRig(t, "member.added", "member.added", "member.added")
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			g.st.setState("wh_1", g.st.state("wh_1").Replayed(""))
		}
		w.WriteHeader(200)
	}
	g.ep.State = g.st.state("wh_1")
	res, err := g.runner.Run(context.Background(), g.ep, g.st, g.st)
	if !errors.Is(err, ErrStateChanged) || res.Delivered != 1 {
		t.Fatalf("Run = %+v, %v; want ErrStateChanged after 1 delivery", res, err)
	}
	g.drive()
	if got, want := g.receivedIDs(), []string{"1", "2", "1", "2", "3"}; !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

// A 2xx whose save failed is sent again, with the same webhook-id: the
// one duplicate the rules allow.
func TestRunSaveFails(t *testing.T) {
	g := newRig(t, "member.added", "member.added")
	g.st.failSave = errBoom
	g.ep.State = g.st.state("wh_1")
	if _, err := g.runner.Run(context.Background(), g.ep, g.st, g.st); !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v, want the sink's error", err)
	}
	g.st.failSave = nil
	g.drive()
	if got, want := g.receivedIDs(), []string{"1", "1", "2"}; !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

// A shutdown mid-request counts no failed attempt.
func TestRunCanceled(t *testing.T) {
	g := newRig(t, "member.added")
	ctx, cancel := context.WithCancel(context.Background())
	g.rc.answer = func(n int, d delivery, w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	}
	g.ep.State = g.st.state("wh_1")
	if _, err := g.runner.Run(ctx, g.ep, g.st, g.st); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if s := g.st.state("wh_1"); s.Status != Active || s.Attempts != 0 || len(g.st.attemptsOf("wh_1")) != 0 {
		t.Fatalf("state %+v with %d attempts logged, want untouched", s, len(g.st.attemptsOf("wh_1")))
	}
}
