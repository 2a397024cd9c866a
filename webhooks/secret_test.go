package webhooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		s := NewSecret()
		v := s.Reveal()
		b64, ok := strings.CutPrefix(v, "whsec_")
		if !ok {
			t.Fatalf("secret %q does not start with whsec_", v)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("secret is not standard base64: %v", err)
		}
		if len(key) != 32 {
			t.Fatalf("key is %d bytes, want 32", len(key))
		}
		if seen[v] {
			t.Fatalf("NewSecret repeated %q", v)
		}
		seen[v] = true
		back, err := ParseSecret(v)
		if err != nil {
			t.Fatalf("ParseSecret(Reveal()) = %v", err)
		}
		if !back.Equal(s) {
			t.Fatal("ParseSecret(Reveal()) is another secret")
		}
		// The reference library accepts it as a receiver would hold it.
		if _, err := standardwebhooks.NewWebhook(v); err != nil {
			t.Fatalf("library refuses our secret: %v", err)
		}
	}
}

func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, n)) }
	tests := []struct {
		in      string
		wantErr string // "" for success
	}{
		{"whsec_" + b64(24), ""},
		{"whsec_" + b64(32), ""},
		{"whsec_" + b64(64), ""},
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""}, // the spec's example
		{b64(32), `must start with "whsec_"`},
		{"WHSEC_" + b64(32), `must start with "whsec_"`},
		{"", `must start with "whsec_"`},
		{"whsec_", "must be 24 to 64 bytes, got 0"},
		{"whsec_" + b64(23), "must be 24 to 64 bytes, got 23"},
		{"whsec_" + b64(65), "must be 24 to 64 bytes, got 65"},
		{"whsec_" + strings.TrimRight(b64(32), "="), "not standard base64"},
		{"whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), "not standard base64"},
		{"whsec_" + b64(32) + " ", "not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSecret(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSecret = %v, want success", err)
				}
				if s.Reveal() != tt.in {
					t.Fatalf("Reveal = %q, want %q", s.Reveal(), tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSecret succeeded, want error %q", tt.wantErr)
			}
			if !errors.Is(err, ErrBadSecret) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want ErrBadSecret saying %q", err, tt.wantErr)
			}
			if b := strings.TrimPrefix(tt.in, "whsec_"); len(b) > 4 && strings.Contains(err.Error(), b[:5]) {
				t.Fatalf("error %q quotes the secret", err)
			}
		})
	}
}

// The example of the Standard Webhooks specification, signed by us.
func TestSignSpecExample(t *testing.T) {
	s := must(ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	got, err := Keys{Current: s}.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
}

func TestSignRotation(t *testing.T) {
	t0 := time.Now()
	old := NewSecret()
	keys := Keys{Current: old}.Rotate(t0)
	if !keys.Previous.Equal(old) || keys.Current.Equal(old) || !keys.PreviousUntil.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("Rotate: previous is old %v, current is new %v, until %v; want true, true, %v",
			keys.Previous.Equal(old), !keys.Current.Equal(old), keys.PreviousUntil, t0.Add(24*time.Hour))
	}
	body := []byte(`{"id":"7","type":"member.added","occurred_at":"2026-01-02T03:04:05Z","data":{}}`)
	verify := func(secret Secret, ts time.Time, sig string) bool {
		wh := must(standardwebhooks.NewWebhook(secret.Reveal()))
		h := http.Header{}
		h.Set("webhook-id", "7")
		h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		h.Set("webhook-signature", sig)
		return wh.VerifyIgnoringTimestamp(body, h) == nil
	}
	tests := []struct {
		name       string
		ts         time.Time
		sigs       int
		oldOK      bool
		currentOK  bool
		rotateMore bool
	}{
		{name: "just rotated", ts: t0, sigs: 2, oldOK: true, currentOK: true},
		{name: "23h later", ts: t0.Add(23 * time.Hour), sigs: 2, oldOK: true, currentOK: true},
		{name: "24h later", ts: t0.Add(24 * time.Hour), sigs: 1, oldOK: false, currentOK: true},
		{name: "a week later", ts: t0.Add(7 * 24 * time.Hour), sigs: 1, oldOK: false, currentOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := must(keys.Sign("7", tt.ts, body))
			parts := strings.Split(sig, " ")
			if len(parts) != tt.sigs {
				t.Fatalf("signature %q has %d parts, want %d", sig, len(parts), tt.sigs)
			}
			for _, p := range parts {
				if !strings.HasPrefix(p, "v1,") {
					t.Errorf("part %q lacks v1,", p)
				}
			}
			if got := verify(old, tt.ts, sig); got != tt.oldOK {
				t.Errorf("old secret verifies: %v, want %v", got, tt.oldOK)
			}
			if got := verify(keys.Current, tt.ts, sig); got != tt.currentOK {
				t.Errorf("current secret verifies: %v, want %v", got, tt.currentOK)
			}
			if verify(NewSecret(), tt.ts, sig) {
				t.Error("an unrelated secret verifies")
			}
		})
	}

	// A second rotation within the overlap keeps only two secrets: the
	// oldest stops at once.
	again := keys.Rotate(t0.Add(time.Hour))
	sig := must(again.Sign("7", t0.Add(time.Hour), body))
	if verify(old, t0.Add(time.Hour), sig) {
		t.Error("after a second rotation the first secret still verifies")
	}
	if !verify(keys.Current, t0.Add(time.Hour), sig) || !verify(again.Current, t0.Add(time.Hour), sig) {
		t.Error("after a second rotation the two newest secrets do not both verify")
	}

	if _, err := (Keys{}).Sign("7", t0, body); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Sign without a secret: %v, want ErrNoSecret", err)
	}
}

// Secrets never show in fmt, slog or JSON output.
func TestSecretNeverPrinted(t *testing.T) {
	cur, prev := NewSecret(), NewSecret()
	ep := Endpoint{
		ID: "wh_1", TeamID: "t1", URL: "https://hooks.example.com/x?token=abc",
		Keys:  Keys{Current: cur, Previous: prev, PreviousUntil: time.Now().Add(time.Hour)},
		State: State{Status: Failing, Cursor: "41", LastError: "HTTP 500"},
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s %q %x %v %+v %#v %s %q\n", ep, ep, ep, cur, cur, cur, &ep, ep.Keys, ep.Keys, []Secret{cur}, map[string]Secret{"k": prev})
	js := must(json.Marshal(ep))
	buf.Write(js)
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
		log := slog.New(h)
		log.Info("endpoint", "endpoint", ep, "keys", ep.Keys, "secret", cur, "ptr", &ep)
		log.Info("group", slog.Group("g", "secret", prev, "endpoint", ep))
		log.Info("any", slog.Any("secrets", []Secret{cur, prev}))
	}
	out := buf.String() + logs.String()
	for _, s := range []Secret{cur, prev} {
		raw := strings.TrimPrefix(s.Reveal(), "whsec_")
		if strings.Contains(out, raw) || strings.Contains(out, raw[:12]) {
			t.Fatalf("a secret shows in the output:\n%s", out)
		}
		if strings.Contains(out, fmt.Sprintf("%x", s.key[:8])) {
			t.Fatalf("a secret's key shows in hex:\n%s", out)
		}
	}
	if strings.Contains(logs.String(), "token=abc") {
		t.Errorf("the URL's query shows in the log:\n%s", logs.String())
	}
	if !strings.Contains(out, "wh_1") || !strings.Contains(out, "[redacted]") {
		t.Errorf("the output lacks the endpoint id or the redaction mark:\n%s", out)
	}
}
