package api

import (
	"context"
	"errors"

	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/roster-dev/roster/store"
	"github.com/roster-dev/roster/webhooks"
)

// Webhooks configures the webhook routes.
type Webhooks struct {
	// AllowPrivateNetworks is the operator setting
	// webhooks.allow_private_networks: URLs may then name loopback and
	// private addresses.
	AllowPrivateNetworks bool
	// Trigger asks for a delivery run of an endpoint (the queue's
	// TriggerDeliver); nil leaves it to the scheduler's sweep.
	Trigger func(ctx context.Context, endpointID string) error
}

func (s *Server) routeWebhooks(h func(string, func(http.ResponseWriter, *http.Request) *apiError)) {
	h("POST /api/v1/teams/{team}/webhooks", s.createWebhook)
	h("GET /api/v1/teams/{team}/webhooks", s.listWebhooks)
	h("GET /api/v1/teams/{team}/webhooks/{id}", s.getWebhook)
	h("DELETE /api/v1/teams/{team}/webhooks/{id}", s.deleteWebhook)
	h("POST /api/v1/teams/{team}/webhooks/{id}/rotate-secret", s.rotateWebhookSecret)
	h("POST /api/v1/teams/{team}/webhooks/{id}/enable", s.enableWebhook)
	h("POST /api/v1/teams/{team}/webhooks/{id}/replay", s.replayWebhook)
	h("GET /api/v1/teams/{team}/webhooks/{id}/deliveries", s.listWebhookDeliveries)
	h("GET /api/v1/teams/{team}/events/stream", s.streamEvents)
}

// Unwrap lets http.ResponseController reach the connection's Flush (the
// event stream needs it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

const maxDescription = 1000

type webhookBody struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	var b webhookBody
	if aerr := decode(w, r, &b); aerr != nil {
		return aerr
	}
	if strings.TrimSpace(b.URL) == "" {
		return errorf(http.StatusBadRequest, CodeBadRequest, "url is required: the https:// address roster sends events to")
	}
	if err := webhooks.ValidateURL(b.URL, s.Webhooks.AllowPrivateNetworks); err != nil {
		return errorf(http.StatusBadRequest, CodeBadRequest, "url: %v", err)
	}
	for _, typ := range b.EventTypes {
		if strings.TrimSpace(typ) == "" || strings.ContainsAny(typ, " \t\n") {
			return errorf(http.StatusBadRequest, CodeBadRequest, "event_types: %q is not an event type (such as member.added, or member.* for a family)", typ)
		}
	}
	if len(b.Description) > maxDescription {
		return errorf(http.StatusBadRequest, CodeBadRequest, "description is longer than %d bytes", maxDescription)
	}
	secret := webhooks.NewSecret()
	wh := &store.Webhook{
		Endpoint: webhooks.Endpoint{
			ID: uuid.NewString(), TeamID: t.ID, URL: b.URL, EventTypes: b.EventTypes,
			Keys: webhooks.Keys{Current: secret}, State: webhooks.State{Status: webhooks.Active},
		},
		Description: b.Description,
	}
	if err := s.Store.CreateWebhook(r.Context(), wh); err != nil {
		return internal(err)
	}
	s.log().Info("webhook endpoint created", "endpoint", wh.Endpoint)
	out, aerr := s.webhookJSON(r.Context(), wh)
	if aerr != nil {
		return aerr
	}
	out["secret"] = secret.Reveal() // shown only here
	writeJSON(w, http.StatusCreated, out)
	// Deliveries start from the start of the team's feed: everything it
	// holds is sent, in order.
	s.triggerDelivery(r.Context(), wh.ID)
	return nil
}

func (s *Server) triggerDelivery(ctx context.Context, id string) {
	if s.Webhooks.Trigger == nil {
		return
	}
	if err := s.Webhooks.Trigger(ctx, id); err != nil {
		// The scheduler's sweep finds endpoints behind their feed.
		s.log().Warn("trigger webhook delivery; the sweep will", "endpoint_id", id, "err", err)
	}
}

func timeJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// webhookJSON renders an endpoint, never with a secret.
func (s *Server) webhookJSON(ctx context.Context, wh *store.Webhook) (map[string]any, *apiError) {
	lag, err := s.Store.WebhookLag(ctx, wh)
	if err != nil {
		return nil, internal(err)
	}
	lagJSON := map[string]any{"events": lag.Behind, "oldest_event_at": nil, "oldest_event_age_seconds": 0.0}
	if !lag.Oldest.IsZero() {
		lagJSON["oldest_event_at"] = lag.Oldest
		lagJSON["oldest_event_age_seconds"] = max(0, time.Since(lag.Oldest).Seconds())
	}
	types := wh.EventTypes
	if types == nil {
		types = []string{}
	}
	out := map[string]any{
		"id": wh.ID, "url": wh.URL, "description": wh.Description, "event_types": types,
		"state": string(wh.State.Status), "cursor": wh.State.Cursor, "lag": lagJSON,
		"last_error": wh.State.LastError, "disabled_reason": wh.State.DisabledReason,
		"failing_since": timeJSON(wh.State.FailingSince), "attempts": wh.State.Attempts,
		"next_attempt_at": timeJSON(wh.State.NextAttemptAt),
		"created_at":      wh.CreatedAt, "updated_at": wh.UpdatedAt,
		"previous_secret_expires_at": nil,
	}
	if !wh.Keys.Previous.IsZero() && time.Now().Before(wh.Keys.PreviousUntil) {
		out["previous_secret_expires_at"] = wh.Keys.PreviousUntil
	}
	return out, nil
}

func (s *Server) webhook(r *http.Request, teamID string) (*store.Webhook, *apiError) {
	wh, err := s.Store.GetWebhook(r.Context(), teamID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, CodeNotFound, "no webhook endpoint %q in this team", r.PathValue("id"))
	}
	if err != nil {
		return nil, internal(err)
	}
	return wh, nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	whs, err := s.Store.ListWebhooks(r.Context(), t.ID)
	if err != nil {
		return internal(err)
	}
	out := make([]map[string]any, 0, len(whs))
	for i := range whs {
		j, aerr := s.webhookJSON(r.Context(), &whs[i])
		if aerr != nil {
			return aerr
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	wh, aerr := s.webhook(r, t.ID)
	if aerr != nil {
		return aerr
	}
	out, aerr := s.webhookJSON(r.Context(), wh)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	err := s.Store.DeleteWebhook(r.Context(), t.ID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "no webhook endpoint %q in this team", r.PathValue("id"))
	}
	if err != nil {
		return internal(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateWebhook applies fn to the endpoint and answers with it; body, when
// not nil, is decoded first.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, fn func(wh *store.Webhook) *apiError, extra func(wh *store.Webhook, out map[string]any)) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	var fnErr *apiError
	wh, err := s.Store.UpdateWebhook(r.Context(), t.ID, r.PathValue("id"), func(wh *store.Webhook) error {
		if fnErr = fn(wh); fnErr != nil {
			return fnErr
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "no webhook endpoint %q in this team", r.PathValue("id"))
	case err != nil:
		return internal(err)
	}
	out, aerr := s.webhookJSON(r.Context(), wh)
	if aerr != nil {
		return aerr
	}
	if extra != nil {
		extra(wh, out)
	}
	writeJSON(w, http.StatusOK, out)
	s.triggerDelivery(r.Context(), wh.ID)
	return nil
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) *apiError {
	return s.updateWebhook(w, r, func(wh *store.Webhook) *apiError {
		wh.Keys = wh.Keys.Rotate(time.Now())
		return nil
	}, func(wh *store.Webhook, out map[string]any) {
		out["secret"] = wh.Keys.Current.Reveal() // shown only here
		s.log().Info("webhook secret rotated", "endpoint", wh.Endpoint, "previous_until", wh.Keys.PreviousUntil)
	})
}

func (s *Server) enableWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	return s.updateWebhook(w, r, func(wh *store.Webhook) *apiError {
		wh.State = wh.State.Enabled()
		return nil
	}, nil)
}

func (s *Server) replayWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	var b struct {
		After *string `json:"after"`
	}
	if aerr := decode(w, r, &b); aerr != nil {
		return aerr
	}
	if b.After == nil {
		return errorf(http.StatusBadRequest, CodeBadRequest, `after is required: the event id to re-send after ("" for the start of the feed)`)
	}
	after := *b.After
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n <= 0 {
			return errorf(http.StatusBadRequest, CodeBadRequest, "after must be an event id of this team's feed, got %q", after)
		}
		t, aerr := s.team(r)
		if aerr != nil {
			return aerr
		}
		evs, err := s.Store.ListEvents(r.Context(), t.ID, n-1, 1)
		if err != nil {
			return internal(err)
		}
		if len(evs) == 0 || evs[0].Seq != n {
			return errorf(http.StatusBadRequest, CodeBadRequest, "after: no event %q in this team's feed", after)
		}
	}
	return s.updateWebhook(w, r, func(wh *store.Webhook) *apiError {
		wh.State = wh.State.Replayed(after)
		return nil
	}, nil)
}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	wh, aerr := s.webhook(r, t.ID)
	if aerr != nil {
		return aerr
	}
	limit, after, aerr := pageArgs(r)
	if aerr != nil {
		return aerr
	}
	var before int64
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeBadRequest, "cursor is not one this API gave out")
		}
		before = n
	}
	ds, err := s.Store.ListWebhookDeliveries(r.Context(), wh.ID, before, limit+1)
	if err != nil {
		return internal(err)
	}
	writePage(w, "deliveries", ds, limit, func(d *store.WebhookDelivery) string { return strconv.FormatInt(d.ID, 10) }, deliveryJSON)
	return nil
}

func deliveryJSON(d *store.WebhookDelivery) map[string]any {
	return map[string]any{
		"id": strconv.FormatInt(d.ID, 10), "event_id": d.EventID, "at": d.At, "status": d.StatusCode,
		"result": d.Outcome, "duration_ms": float64(d.Duration.Microseconds()) / 1000,
		"error": d.Error, "response": d.Response, "response_truncated": d.Truncated,
	}
}
