package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/webhooks"
)

func TestWebhookStore(t *testing.T) {
	forEngines(t, func(t *testing.T, s *store.Store) {
		ctx := setup(t, s)
		var hooked atomic.Int32
		s.OnEventsCommitted(func(team string) {
			if team == "t1" {
				hooked.Add(1)
			}
		})
		mustTx(t, s, func(tx *store.Tx) error {
			return tx.AppendEvents(ctx, "t1", []store.Event{
				{DirectoryID: "d1", Type: "member.added", Data: json.RawMessage(`{"email":"a@x.test"}`)},
				{DirectoryID: "d1", Type: "group.created", Data: json.RawMessage(`{"name":"<Eng>"}`)},
			})
		})
		if hooked.Load() != 1 {
			t.Fatalf("after-commit hook called %d times, want 1", hooked.Load())
		}

		secret := webhooks.NewSecret()
		w := &store.Webhook{Endpoint: webhooks.Endpoint{ID: "w1", TeamID: "t1", URL: "https://hooks.example/x",
			EventTypes: []string{"member.*"}, Keys: webhooks.Keys{Current: secret}}, Description: "d"}
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetWebhook(ctx, "t1", "w1")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Keys.Current.Equal(secret) || got.State.Status != webhooks.Active || got.State.Cursor != "" || got.EventTypes[0] != "member.*" {
			t.Fatalf("stored webhook %+v", got)
		}
		if _, err := s.GetWebhook(ctx, "other", "w1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another team's read: %v", err)
		}

		// The events as a delivery sends them: byte for byte what the feed
		// renders.
		evs, err := s.EventsAfter(ctx, "t1", "", 10)
		if err != nil || len(evs) != 2 {
			t.Fatalf("EventsAfter = %v, %v", evs, err)
		}
		feed, _ := s.ListEvents(ctx, "t1", 0, 10)
		for i := range feed {
			want, _ := feed[i].FeedBody()
			if string(evs[i].Body) != string(want) || evs[i].ID != feed[i].Feed().ID {
				t.Errorf("event %d body %s, want %s", i, evs[i].Body, want)
			}
		}
		if !strings.Contains(string(evs[1].Body), `"<Eng>"`) {
			t.Errorf("body escapes HTML: %s", evs[1].Body)
		}
		due, err := s.WebhooksDue(ctx, time.Now())
		if err != nil || len(due) != 1 {
			t.Fatalf("due = %v, %v", due, err)
		}

		// SaveState is a compare-and-set and logs the attempt with it.
		from := got.State
		to := from
		to.Cursor = evs[0].ID
		a := &webhooks.Attempt{EventID: evs[0].ID, At: time.Now(), StatusCode: 204, Outcome: webhooks.Delivered, Duration: 3 * time.Millisecond}
		if err := s.SaveState(ctx, "w1", from, to, a); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveState(ctx, "w1", from, to, a); !errors.Is(err, webhooks.ErrStateChanged) {
			t.Fatalf("stale SaveState: %v, want ErrStateChanged", err)
		}
		lag, err := s.WebhookLag(ctx, mustGet(t, s, "w1"))
		if err != nil || lag.Behind != 1 || lag.Oldest.IsZero() {
			t.Fatalf("lag = %+v, %v", lag, err)
		}

		// An admin change meanwhile makes a delivery's save fail.
		if _, err := s.UpdateWebhook(ctx, "t1", "w1", func(w *store.Webhook) error {
			w.State = w.State.Replayed("")
			w.Keys = w.Keys.Rotate(time.Now())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		next := to
		next.Cursor = evs[1].ID
		if err := s.SaveState(ctx, "w1", to, next, nil); !errors.Is(err, webhooks.ErrStateChanged) {
			t.Fatalf("save after replay: %v, want ErrStateChanged", err)
		}
		rotated := mustGet(t, s, "w1")
		if rotated.State.Cursor != "" || !rotated.Keys.Previous.Equal(secret) || rotated.Keys.Current.Equal(secret) {
			t.Fatalf("after replay and rotate: %+v", rotated.State)
		}

		// Disabling appends webhook.disabled to the team's feed.
		dis := rotated.State
		dis.Status, dis.DisabledReason = webhooks.Disabled, "the receiver answered 410 Gone"
		gone := &webhooks.Attempt{EventID: evs[0].ID, At: time.Now(), StatusCode: 410, Outcome: webhooks.Gone, Error: "HTTP 410"}
		if err := s.SaveState(ctx, "w1", rotated.State, dis, gone); err != nil {
			t.Fatal(err)
		}
		feed, _ = s.ListEvents(ctx, "t1", 0, 10)
		if last := feed[len(feed)-1]; last.Type != store.EventWebhookDisabled || !strings.Contains(string(last.Data), `"w1"`) {
			t.Fatalf("last event %s %s, want webhook.disabled", last.Type, last.Data)
		}
		if ids, _ := s.ActiveWebhookIDs(ctx, "t1"); len(ids) != 0 {
			t.Errorf("active ids of a disabled endpoint: %v", ids)
		}

		// The delivery log, newest first, paged by id, and pruned by age.
		log, err := s.ListWebhookDeliveries(ctx, "w1", 0, 10)
		if err != nil || len(log) != 2 || log[0].StatusCode != 410 || log[1].StatusCode != 204 || log[1].Duration != 3*time.Millisecond {
			t.Fatalf("log = %+v, %v", log, err)
		}
		older, _ := s.ListWebhookDeliveries(ctx, "w1", log[0].ID, 10)
		if len(older) != 1 || older[0].ID != log[1].ID {
			t.Fatalf("page below %d = %+v", log[0].ID, older)
		}
		if n, err := s.PruneWebhookDeliveries(ctx, time.Now().Add(time.Minute)); err != nil || n != 2 {
			t.Fatalf("pruned %d, %v; want 2", n, err)
		}

		if err := s.DeleteWebhook(ctx, "t1", "w1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteWebhook(ctx, "t1", "w1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func mustGet(t *testing.T, s *store.Store, id string) *store.Webhook {
	t.Helper()
	w, err := s.GetWebhook(t.Context(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
