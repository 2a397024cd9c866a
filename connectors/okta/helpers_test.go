package okta

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/okta/oktafake"
)

const testToken = "00abcDEFghiJKLmnoPQRstuVWXyz0123456789ABCD"

// clock is the fake time shared by the fake org and the connector; waits
// advance it instead of sleeping.
type clock struct {
	mu     sync.Mutex
	t      time.Time
	waited []time.Duration
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.waited = append(c.waited, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waited...)
}

type env struct {
	t     *testing.T
	clock *clock
	fake  *oktafake.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := newClock()
	f := oktafake.New(oktafake.WithClock(c.Now))
	t.Cleanup(f.Close)
	f.AddAPIToken(testToken, oktafake.ReadOnlyAdmin)
	return &env{t: t, clock: c, fake: f}
}

func (e *env) tokenConfig() Config {
	return Config{OrgURL: e.fake.URL, APIToken: testToken}
}

func (e *env) open(cfg Config) *Source {
	e.t.Helper()
	s, err := New(cfg, nil, WithHTTPClient(e.fake.Client()), WithSleep(e.clock.Sleep), WithClock(e.clock.Now))
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return s
}

func (e *env) full(s *Source) (*connectors.Snapshot, []byte) {
	e.t.Helper()
	snap, cur, err := s.Full(context.Background())
	if err != nil {
		e.t.Fatalf("Full: %v", err)
	}
	return snap, cur
}

func (e *env) changes(s *Source, cur []byte) (*connectors.Delta, []byte) {
	e.t.Helper()
	d, next, err := s.Changes(context.Background(), cur)
	if err != nil {
		e.t.Fatalf("Changes: %v", err)
	}
	return d, next
}

var (
	keyOnce sync.Once
	keyA    *rsa.PrivateKey
	keyB    *rsa.PrivateKey
)

// testKeys returns two RSA keys, made once per test binary.
func testKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keyA, keyB
}

func pkcs8PEM(t *testing.T, k any) string {
	t.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}))
}

func pkcs1PEM(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func userByID(users []connectors.User) map[string]connectors.User {
	m := map[string]connectors.User{}
	for _, u := range users {
		m[u.ExternalID] = u
	}
	return m
}

func groupByID(groups []connectors.Group) map[string]connectors.Group {
	m := map[string]connectors.Group{}
	for _, g := range groups {
		m[g.ExternalID] = g
	}
	return m
}
