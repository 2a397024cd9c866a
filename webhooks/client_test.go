package webhooks

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

func testEvent(id string) Event {
	return Event{ID: id, Type: "member.added", Body: []byte(`{"id":"` + id + `","type":"member.added","occurred_at":"2026-01-02T03:04:05Z","data":{"email":"ann@acme.com"}}`)}
}

func TestDeliverSignedRequest(t *testing.T) {
	secret := NewSecret()
	rc := newReceiver(t, nil, secret)
	c := NewClient(Options{AllowPrivateNetworks: true})
	ep := &Endpoint{ID: "wh_1", URL: rc.URL(), Keys: Keys{Current: secret}}
	ev := testEvent("42")

	before := time.Now()
	a := c.Deliver(context.Background(), ep, ev)
	if a.Outcome != Delivered || a.StatusCode != 200 || a.Error != "" || a.EventID != "42" {
		t.Fatalf("attempt %+v, want delivered 200 for event 42", a)
	}
	if a.At.Before(before.Add(-time.Second)) || a.Duration <= 0 || a.Duration > 5*time.Second {
		t.Errorf("attempt at %v lasting %v, want now and positive", a.At, a.Duration)
	}
	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	d := got[0]
	if d.ID != "42" || d.Body != string(ev.Body) {
		t.Errorf("webhook-id %q body %q, want 42 and the event byte for byte", d.ID, d.Body)
	}
	if ts, _ := strconv.ParseInt(d.Timestamp, 10, 64); ts != a.At.Unix() {
		t.Errorf("webhook-timestamp %q, want %d (Unix seconds of the attempt)", d.Timestamp, a.At.Unix())
	}
	if !strings.HasPrefix(d.Signature, "v1,") || strings.Contains(d.Signature, " ") {
		t.Errorf("signature %q, want one v1 signature", d.Signature)
	}
	rc.requireVerified()

	// A retry of the same event carries the same webhook-id and a fresh
	// signature that verifies too.
	c.Deliver(context.Background(), ep, ev)
	got = rc.deliveries()
	if len(got) != 2 || got[1].ID != "42" {
		t.Fatalf("second attempt: %+v, want webhook-id 42 again", got)
	}
	rc.requireVerified()
}

func TestDeliverOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		want       Outcome
		status     int
		errHas     string
		retryAfter time.Duration
	}{
		{"200", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }, Delivered, 200, "", 0},
		{"202", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }, Delivered, 202, "", 0},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, Delivered, 204, "", 0},
		{"299", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }, Delivered, 299, "", 0},
		{"410 disables", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) }, Gone, 410, "410 Gone", 0},
		{"400", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }, Retry, 400, "HTTP 400", 0},
		{"401", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }, Retry, 401, "HTTP 401", 0},
		{"404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }, Retry, 404, "HTTP 404", 0},
		{"429 with Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		}, Retry, 429, "HTTP 429", 120 * time.Second},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, Retry, 500, "HTTP 500", 0},
		{"503 with a date", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(503)
		}, Retry, 503, "HTTP 503", 89 * time.Second},
		{"100-ish informational then 200", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(103)
			w.WriteHeader(200)
		}, Delivered, 200, "", 0},
		{"304", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304) }, Retry, 304, "redirects are not followed", 0},
		{"hijacked and closed", func(w http.ResponseWriter, r *http.Request) {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		}, Retry, 0, "closed the connection without a full answer", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := NewClient(Options{AllowPrivateNetworks: true})
			ep := &Endpoint{ID: "wh_1", URL: srv.URL, Keys: Keys{Current: NewSecret()}}
			a := c.Deliver(context.Background(), ep, testEvent("1"))
			if a.Outcome != tt.want || a.StatusCode != tt.status {
				t.Fatalf("attempt %+v: outcome %v status %d, want %v %d", a, a.Outcome, a.StatusCode, tt.want, tt.status)
			}
			if tt.errHas == "" && a.Error != "" || !strings.Contains(a.Error, tt.errHas) {
				t.Errorf("error %q, want it to say %q", a.Error, tt.errHas)
			}
			if a.RetryAfter < tt.retryAfter || a.RetryAfter > tt.retryAfter+2*time.Second {
				t.Errorf("RetryAfter %v, want about %v", a.RetryAfter, tt.retryAfter)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere?token=secret-in-query", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(Options{AllowPrivateNetworks: true})
	for path, code := range map[string]int{"/hook": 307, "/moved": 302} {
		ep := &Endpoint{ID: "wh_1", URL: srv.URL + path, Keys: Keys{Current: NewSecret()}}
		a := c.Deliver(context.Background(), ep, testEvent("1"))
		if a.Outcome != Retry || a.StatusCode != code || !strings.Contains(a.Error, "redirects are not followed") {
			t.Errorf("%s: attempt %+v, want a retry for an unfollowed %d", path, a, code)
		}
		if strings.Contains(a.Error, "secret-in-query") {
			t.Errorf("%s: error %q shows the Location's query", path, a.Error)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests, want none", n)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewClient(Options{AllowPrivateNetworks: true, Timeout: 150 * time.Millisecond})
	ep := &Endpoint{ID: "wh_1", URL: srv.URL, Keys: Keys{Current: NewSecret()}}
	a := c.Deliver(context.Background(), ep, testEvent("1"))
	if a.Outcome != Retry || a.StatusCode != 0 || a.Error != "timeout after 150ms" {
		t.Fatalf("attempt %+v, want a retry saying \"timeout after 150ms\"", a)
	}
	if a.Duration < 150*time.Millisecond || a.Duration > 3*time.Second {
		t.Errorf("attempt took %v, want about the timeout", a.Duration)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	c := NewClient(Options{AllowPrivateNetworks: true})
	a := c.Deliver(context.Background(), &Endpoint{ID: "wh_1", URL: u, Keys: Keys{Current: NewSecret()}}, testEvent("1"))
	if want := "connect to " + strings.TrimPrefix(u, "http://") + ": connection refused"; a.Outcome != Retry || a.StatusCode != 0 || a.Error != want {
		t.Fatalf("attempt %+v, want a retry saying %q", a, want)
	}
}

func TestResponseBodyTruncated(t *testing.T) {
	long := strings.Repeat("a", 4095) + "é" + strings.Repeat("b", 10000) // é straddles the 4 KiB mark
	tests := []struct {
		name      string
		body      string
		max       int
		want      string
		truncated bool
	}{
		{"short", "accepted", 0, "accepted", false},
		{"exactly the limit", strings.Repeat("x", 4096), 0, strings.Repeat("x", 4096), false},
		{"long, cut before a split character", long, 0, strings.Repeat("a", 4095), true},
		{"configured limit", "0123456789", 4, "0123", true},
		{"binary", "\xff\xfe\x00ok", 0, "\uFFFD\x00ok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(500)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := NewClient(Options{AllowPrivateNetworks: true, MaxResponseBytes: tt.max})
			a := c.Deliver(context.Background(), &Endpoint{ID: "wh_1", URL: srv.URL, Keys: Keys{Current: NewSecret()}}, testEvent("1"))
			if a.Response != tt.want || a.Truncated != tt.truncated {
				t.Fatalf("response %d bytes %q… truncated %v, want %d bytes truncated %v", len(a.Response), shorten(a.Response, 20), a.Truncated, len(tt.want), tt.truncated)
			}
			if !utf8.ValidString(a.Response) {
				t.Fatal("response is not valid UTF-8")
			}
		})
	}
}

// A ctx canceled by the caller ends the attempt at once.
func TestDeliverCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body to its end lets the server notice the client
		// leave.
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	c := NewClient(Options{AllowPrivateNetworks: true})
	a := c.Deliver(ctx, &Endpoint{ID: "wh_1", URL: srv.URL, Keys: Keys{Current: NewSecret()}}, testEvent("1"))
	if a.Outcome != Retry || a.Error != "canceled" || a.Duration > 5*time.Second {
		t.Fatalf("attempt %+v, want a canceled retry", a)
	}
}

func TestWants(t *testing.T) {
	tests := []struct {
		types []string
		typ   string
		want  bool
	}{
		{nil, "member.added", true},
		{[]string{"member.added"}, "member.added", true},
		{[]string{"member.added"}, "member.removed", false},
		{[]string{"member.*"}, "member.removed", true},
		{[]string{"member.*"}, "membership.added", false},
		{[]string{"group.created", "spend_limit.changed"}, "spend_limit.changed", true},
		{[]string{"*"}, "directory.needs_review", true},
		{[]string{"member*"}, "membership.added", false},
	}
	for _, tt := range tests {
		ep := &Endpoint{EventTypes: tt.types}
		if got := ep.Wants(tt.typ); got != tt.want {
			t.Errorf("Wants(%q) with %q = %v, want %v", tt.typ, tt.types, got, tt.want)
		}
	}
}
