package webhooks_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roster-dev/roster/webhooks"
)

// A receiver verifies each delivery with the endpoint's secret (shown once
// when the endpoint was created) and deduplicates on webhook-id.
func Example_receiver() {
	secret := webhooks.NewSecret()

	// The receiver's side: a few lines with the Standard Webhooks library.
	wh, err := standardwebhooks.NewWebhook(secret.Reveal())
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("verified event %s: %s\n", r.Header.Get("webhook-id"), body)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()

	// roster's side.
	c := webhooks.NewClient(webhooks.Options{AllowPrivateNetworks: true}) // the receiver is on loopback
	ep := &webhooks.Endpoint{ID: "wh_1", URL: srv.URL, Keys: webhooks.Keys{Current: secret}}
	a := c.Deliver(context.Background(), ep, webhooks.Event{
		ID:   "17",
		Type: "member.added",
		Body: []byte(`{"id":"17","type":"member.added","occurred_at":"2026-01-02T03:04:05Z","data":{"email":"ann@acme.com"}}`),
	})
	fmt.Println(a.Outcome, a.StatusCode)
	// Output:
	// verified event 17: {"id":"17","type":"member.added","occurred_at":"2026-01-02T03:04:05Z","data":{"email":"ann@acme.com"}}
	// delivered 204
}
