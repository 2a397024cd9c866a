package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/roster-dev/roster/api"
	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

const token = "stream-test-admin-token"

// TestStreamBoundAndWake opens the stream on both engines: a commit wakes
// it with no polling, a stream over the bound is refused with 503, and
// Close ends the open ones.
func TestStreamBoundAndWake(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			s := testenv.OpenStore(t, e)
			if err := s.CreateTeam(ctx, &store.Team{ID: "t1", Name: "One", Plan: store.PlanEnterprise}); err != nil {
				t.Fatal(err)
			}
			srv := &api.Server{Store: s, Streams: api.Streams{Hub: api.NewHub(), Max: 1, Heartbeat: 2 * time.Second}}
			s.OnEventsCommitted(srv.Streams.Hub.Notify)
			if err := srv.AddAdminToken(ctx, token, "test"); err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()

			open := func() *http.Response {
				req, _ := http.NewRequest("GET", hs.URL+"/api/v1/teams/t1/events/stream", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			first := open()
			defer first.Body.Close()
			if first.StatusCode != 200 {
				t.Fatalf("first stream: %d", first.StatusCode)
			}
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(first.Body)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()

			second := open()
			var body map[string]map[string]string
			json.NewDecoder(second.Body).Decode(&body)
			second.Body.Close()
			if msg := body["error"]["message"]; !strings.Contains(msg, "too many event streams") {
				t.Errorf("503 message %q, want it to say why", msg)
			}
			if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") == "" {
				t.Fatalf("stream over the bound: %d, want 503 with Retry-After", second.StatusCode)
			}

			// Streams.Poll is 0 and the heartbeat (which also re-reads)
			// is later than the deadline: only the commit's wake-up can
			// deliver this in time.
			if err := s.WithTx(ctx, func(tx *store.Tx) error {
				return tx.AppendEvents(ctx, "t1", []store.Event{{Type: "member.added", Data: json.RawMessage(`{"n":1}`)}})
			}); err != nil {
				t.Fatal(err)
			}
			var heartbeat bool
			deadline := time.After(1500 * time.Millisecond)
			for got := false; !got; {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("stream ended early")
					}
					heartbeat = heartbeat || strings.HasPrefix(l, ":")
					if strings.HasPrefix(l, "data: ") {
						if !strings.Contains(l, `"type":"member.added"`) || !strings.Contains(l, `"id":"1"`) {
							t.Fatalf("data line %q", l)
						}
						got = true
					}
				case <-deadline:
					t.Fatal("no event on the stream after a commit")
				}
			}
			for wait := time.After(4 * time.Second); !heartbeat; {
				select {
				case l := <-lines:
					heartbeat = strings.HasPrefix(l, ":")
				case <-wait:
					t.Fatal("no heartbeat comment")
				}
			}
			srv.Streams.Close()
			for range lines {
			}
		})
	}
}
