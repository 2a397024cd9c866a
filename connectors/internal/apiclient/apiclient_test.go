package apiclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func get(url string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
}

func TestDoRetries(t *testing.T) {
	tests := []struct {
		name      string
		answers   []int // status per attempt; the last repeats
		header    string
		wantErr   bool
		wantStat  int
		wantReqs  int64
		wantThrot int64
		wantWait  time.Duration
	}{
		{name: "ok", answers: []int{200}, wantReqs: 1},
		{name: "429 then ok, Retry-After honoured", answers: []int{429, 200}, header: "7", wantReqs: 2, wantThrot: 1, wantWait: 7 * time.Second},
		{name: "503 then ok", answers: []int{503, 503, 200}, wantReqs: 3, wantThrot: 2},
		{name: "500 retried", answers: []int{500, 200}, wantReqs: 2},
		{name: "404 not retried", answers: []int{404}, wantErr: true, wantStat: 404, wantReqs: 1},
		{name: "401 not retried", answers: []int{401}, wantErr: true, wantStat: 401, wantReqs: 1},
		{name: "always 429 gives up", answers: []int{429}, wantErr: true, wantStat: 429, wantReqs: 3, wantThrot: 3},
		{name: "Retry-After over the cap fails at once", answers: []int{429}, header: "3600", wantErr: true, wantStat: 429, wantReqs: 1, wantThrot: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				st := tt.answers[min(i, len(tt.answers)-1)]
				if tt.header != "" && st != 200 {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(st)
				w.Write([]byte(`{"ok":true}`))
			}))
			defer srv.Close()
			var waited []time.Duration
			c := &Client{HTTP: srv.Client(), MaxAttempts: 3, MaxWait: time.Minute,
				Sleep: func(ctx context.Context, d time.Duration) error { waited = append(waited, d); return nil }}
			resp, err := c.Do(context.Background(), get(srv.URL))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				var se *StatusError
				if !errors.As(err, &se) || se.Status != tt.wantStat {
					t.Fatalf("err = %v, want StatusError %d", err, tt.wantStat)
				}
			} else if string(resp.Body) != `{"ok":true}` {
				t.Fatalf("body = %q", resp.Body)
			}
			if got := c.Stats.Requests.Load(); got != tt.wantReqs {
				t.Errorf("requests = %d, want %d", got, tt.wantReqs)
			}
			if got := c.Stats.Throttled.Load(); got != tt.wantThrot {
				t.Errorf("throttled = %d, want %d", got, tt.wantThrot)
			}
			if tt.wantWait != 0 && (len(waited) == 0 || waited[0] != tt.wantWait) {
				t.Errorf("waited %v, want first wait %v", waited, tt.wantWait)
			}
		})
	}
}

func TestClassifyOverrides(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(403)
			w.Write([]byte(`{"error":{"errors":[{"reason":"rateLimitExceeded"}]}}`))
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(),
		Sleep: func(context.Context, time.Duration) error { return nil },
		Classify: func(resp *http.Response, body []byte) (Verdict, bool) {
			if resp.StatusCode == 403 {
				return Verdict{Retry: true, Throttled: true}, true
			}
			return Verdict{}, false
		}}
	if _, err := c.Do(context.Background(), get(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if c.Stats.Throttled.Load() != 1 || c.Stats.Requests.Load() != 2 {
		t.Fatalf("throttled %d requests %d, want 1 and 2", c.Stats.Throttled.Load(), c.Stats.Requests.Load())
	}
}

func TestConcurrencyBound(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := inFlight.Add(1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), Concurrency: 2}
	done := make(chan error)
	for range 8 {
		go func() { _, err := c.Do(context.Background(), get(srv.URL)); done <- err }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if peak.Load() > 2 {
		t.Fatalf("peak in flight %d, want at most 2", peak.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"3", 3 * time.Second}, {"1.5", 1500 * time.Millisecond},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0}, {"soon", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.v != "" {
			h.Set("Retry-After", tt.v)
		}
		if got := RetryAfter(h, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestUnknownHostIsNotRetried(t *testing.T) {
	// The transport answers as a resolver does for a name that does not
	// exist, so the test needs no DNS.
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "no-such-host.invalid", IsNotFound: true}
	}}
	c := &Client{HTTP: &http.Client{Transport: tr}, Sleep: func(context.Context, time.Duration) error {
		t.Fatal("slept before a retry of an unknown host")
		return nil
	}}
	_, err := c.Do(context.Background(), get("https://no-such-host.invalid/x"))
	if err == nil {
		t.Fatal("no error for an unknown host")
	}
	if got := c.Stats.Requests.Load(); got != 1 {
		t.Fatalf("requests = %d, want 1 (no retry)", got)
	}
}
