package google

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors/google/googlefake"
)

// RSA keys are slow to make on a busy machine: the tests share two.
var (
	keysOnce          sync.Once
	testKey, otherKey *rsa.PrivateKey
	errKeys           error
)

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		if testKey, errKeys = rsa.GenerateKey(rand.Reader, 2048); errKeys != nil {
			return
		}
		otherKey, errKeys = rsa.GenerateKey(rand.Reader, 2048)
	})
	if errKeys != nil {
		t.Fatalf("generate keys: %v", errKeys)
	}
	return testKey, otherKey
}

func newFake(t testing.TB) *googlefake.Server {
	t.Helper()
	k, _ := keys(t)
	f := googlefake.New(googlefake.Options{Key: k})
	t.Cleanup(f.Close)
	return f
}

func configFor(f *googlefake.Server) Config {
	return Config{
		ServiceAccountJSON: ServiceAccountKey(f.ServiceAccountJSON()),
		AdminEmail:         f.Admin(),
		APIURL:             f.URL,
		TokenURL:           f.TokenURL,
	}
}

// waits records what a source was told to sleep, without sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func open(t testing.TB, cfg Config) (*Source, *waits) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w := &waits{}
	s.api.Sleep = w.sleep
	s.tokc.Sleep = w.sleep
	return s, w
}

func full(t testing.TB, s *Source) snapshotView {
	t.Helper()
	snap, cursor, err := s.Full(context.Background())
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	if cursor != nil {
		t.Fatalf("Full returned cursor %s; Google has none", cursor)
	}
	return view(snap)
}
