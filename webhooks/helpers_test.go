package webhooks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// fakeClock is a settable clock; tests move it to a run's RetryAt instead
// of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// delivery is what a receiver saw of one request.
type delivery struct {
	ID        string
	Timestamp string
	Signature string
	Body      string
	// Verified[i] says whether the library verified the request with the
	// receiver's i-th secret.
	Verified []bool
	At       time.Time // receiver's clock
}

// receiver is a webhook receiver as a customer would write one: it
// verifies every request with the Standard Webhooks reference library.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	// now is the clock the sender uses; nil means the real one, and then
	// the library's own timestamp tolerance applies.
	now func() time.Time

	mu      sync.Mutex
	secrets []string
	got     []delivery
	// answer decides the response to the n-th request (from 0); nil
	// answers 200.
	answer func(n int, d delivery, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, now func() time.Time, secrets ...Secret) *receiver {
	t.Helper()
	rc := &receiver{t: t, now: now}
	for _, s := range secrets {
		rc.secrets = append(rc.secrets, s.Reveal())
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/hooks/roster" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: read body: %v", err)
		return
	}
	d := delivery{
		ID:        r.Header.Get("webhook-id"),
		Timestamp: r.Header.Get("webhook-timestamp"),
		Signature: r.Header.Get("webhook-signature"),
		Body:      string(body),
	}
	if r.Method != http.MethodPost {
		rc.t.Errorf("receiver: method %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("receiver: Content-Type %q, want application/json", ct)
	}
	rc.mu.Lock()
	secrets := append([]string(nil), rc.secrets...)
	rc.mu.Unlock()
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			rc.t.Errorf("receiver: library refuses secret: %v", err)
			d.Verified = append(d.Verified, false)
			continue
		}
		if rc.now == nil {
			d.Verified = append(d.Verified, wh.Verify(body, r.Header) == nil)
			continue
		}
		// The sender's clock is fake: check the timestamp against it, as
		// the library checks it against the real one.
		ok := wh.VerifyIgnoringTimestamp(body, r.Header) == nil
		ts, err := strconv.ParseInt(d.Timestamp, 10, 64)
		if err != nil || time.Unix(ts, 0).Sub(rc.now()).Abs() > 5*time.Minute {
			ok = false
		}
		d.Verified = append(d.Verified, ok)
	}
	if rc.now != nil {
		d.At = rc.now()
	}
	rc.mu.Lock()
	n := len(rc.got)
	rc.got = append(rc.got, d)
	answer := rc.answer
	rc.mu.Unlock()
	if answer != nil {
		answer(n, d, w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) setSecrets(secrets ...Secret) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets = nil
	for _, s := range secrets {
		rc.secrets = append(rc.secrets, s.Reveal())
	}
}

// requireVerified fails unless every delivery verified with every secret
// the receiver holds.
func (rc *receiver) requireVerified() {
	rc.t.Helper()
	for i, d := range rc.deliveries() {
		for j, ok := range d.Verified {
			if !ok {
				rc.t.Errorf("delivery %d (webhook-id %s) does not verify with secret %d; signature %q", i, d.ID, j, d.Signature)
			}
		}
		if len(d.Verified) == 0 {
			rc.t.Errorf("delivery %d: receiver holds no secret to verify with", i)
		}
	}
}

// memStore is an EventSource and StateSink in memory, with the
// compare-and-set a real store does.
type memStore struct {
	mu       sync.Mutex
	events   []Event // ids "1", "2", ... in order
	states   map[string]State
	attempts map[string][]Attempt
	saves    int
	// failSave, when set, makes SaveState fail with it.
	failSave error
}

func newMemStore() *memStore {
	return &memStore{states: map[string]State{}, attempts: map[string][]Attempt{}}
}

// add appends events of the given types; ids follow the feed's: the
// decimal sequence number.
func (m *memStore) add(types ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, typ := range types {
		id := strconv.Itoa(len(m.events) + 1)
		body := fmt.Sprintf(`{"id":%q,"type":%q,"occurred_at":"2026-01-02T03:04:05Z","data":{"team_id":"t1","n":%s}}`, id, typ, id)
		m.events = append(m.events, Event{ID: id, Type: typ, Body: []byte(body)})
	}
}

func (m *memStore) EventsAfter(_ context.Context, teamID, cursor string, limit int) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if teamID != "t1" {
		return nil, fmt.Errorf("memStore: unknown team %q", teamID)
	}
	after := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil {
			return nil, fmt.Errorf("memStore: bad cursor %q", cursor)
		}
		after = n
	}
	if after >= len(m.events) {
		return nil, nil
	}
	end := min(len(m.events), after+limit)
	return append([]Event(nil), m.events[after:end]...), nil
}

func (m *memStore) SaveState(_ context.Context, endpointID string, from, to State, a *Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSave != nil {
		return m.failSave
	}
	cur := m.states[endpointID]
	if cur.Cursor != from.Cursor || cur.Status != from.Status {
		return ErrStateChanged
	}
	m.states[endpointID] = to
	if a != nil {
		m.attempts[endpointID] = append(m.attempts[endpointID], *a)
	}
	m.saves++
	return nil
}

func (m *memStore) state(id string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[id]
}

func (m *memStore) setState(id string, s State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states[id] = s
}

func (m *memStore) attemptsOf(id string) []Attempt {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Attempt(nil), m.attempts[id]...)
}

// fakeDNS answers every A or AAAA query with one address, so a test can
// make any name resolve where it likes. It returns a resolver that asks
// only it.
func fakeDNS(t *testing.T, answer netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake DNS: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, ok := dnsAnswer(buf[:n], answer); ok {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// dnsAnswer builds the response to one query (RFC 1035 §4.1).
func dnsAnswer(q []byte, answer netip.Addr) ([]byte, bool) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, false
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]
	var rdata []byte
	switch {
	case qtype == 1 && answer.Is4():
		b := answer.As4()
		rdata = b[:]
	case qtype == 28 && answer.Is6():
		b := answer.As16()
		rdata = b[:]
	}
	resp := make([]byte, 0, 512)
	resp = append(resp, q[0], q[1], 0x81, 0x80) // id; response, recursion desired and available
	resp = binary.BigEndian.AppendUint16(resp, 1)
	ancount := uint16(0)
	if rdata != nil {
		ancount = 1
	}
	resp = binary.BigEndian.AppendUint16(resp, ancount)
	resp = append(resp, 0, 0, 0, 0) // no authority, no additional records
	resp = append(resp, question...)
	if rdata != nil {
		resp = append(resp, 0xc0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // class IN
		resp = binary.BigEndian.AppendUint32(resp, 60)
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp, true
}

// must is for set-up steps that cannot fail unless the test is broken.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var errBoom = errors.New("boom")
