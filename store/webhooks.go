package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/roster-dev/roster/webhooks"
)

// Webhook is a webhook endpoint as the store keeps it: the delivery core's
// Endpoint (URL, event types, secrets, state) and what the admin API shows
// besides.
type Webhook struct {
	webhooks.Endpoint
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// WebhookDelivery is one attempt of the delivery log.
type WebhookDelivery struct {
	ID         int64
	EndpointID string
	EventID    string
	At         time.Time
	StatusCode int // 0 when no response came
	Outcome    string
	Duration   time.Duration
	Error      string
	Response   string
	Truncated  bool
}

// DefaultWebhookLogRetention is how long delivery attempts are kept unless
// configured otherwise.
const DefaultWebhookLogRetention = 7 * 24 * time.Hour

const webhookCols = "id, team_id, url, description, event_types, secret, prev_secret, prev_until, status, cursor, failing_since, attempts, next_attempt_at, last_error, disabled_reason, created_at, updated_at"

// seqOf reads an event id (a cursor) as a sequence number; "" is 0.
func seqOf(id string) (int64, error) {
	if id == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("event id %q: not an id of the feed", id)
	}
	return n, nil
}

func idOf(seq int64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatInt(seq, 10)
}

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func scanWebhook(row interface{ Scan(...any) error }) (*Webhook, error) {
	var w Webhook
	var types, cur, prev, status string
	var prevUntil, failing, next sql.NullInt64
	var cursor, created, updated int64
	err := row.Scan(&w.ID, &w.TeamID, &w.URL, &w.Description, &types, &cur, &prev, &prevUntil, &status,
		&cursor, &failing, &w.State.Attempts, &next, &w.State.LastError, &w.State.DisabledReason, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("scan webhook: %w", err)
	}
	if err := json.Unmarshal([]byte(types), &w.EventTypes); err != nil {
		return nil, fmt.Errorf("webhook %s event types: %w", w.ID, err)
	}
	if w.Keys.Current, err = webhooks.ParseSecret(cur); err != nil {
		return nil, fmt.Errorf("webhook %s secret: %w", w.ID, err)
	}
	if prev != "" {
		if w.Keys.Previous, err = webhooks.ParseSecret(prev); err != nil {
			return nil, fmt.Errorf("webhook %s previous secret: %w", w.ID, err)
		}
		w.Keys.PreviousUntil = fromNullMicros(prevUntil)
	}
	w.State.Status = webhooks.Status(status)
	w.State.Cursor = idOf(cursor)
	w.State.FailingSince = fromNullMicros(failing)
	w.State.NextAttemptAt = fromNullMicros(next)
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &w, nil
}

func typesJSON(types []string) string {
	if types == nil {
		types = []string{}
	}
	b, _ := json.Marshal(types)
	return string(b)
}

// CreateWebhook stores a new endpoint. w.ID, TeamID, URL and Keys.Current
// must be set; its state starts as given (normally active, cursor "").
func (s *Store) CreateWebhook(ctx context.Context, w *Webhook) error {
	if w.Keys.Current.IsZero() {
		return errors.New("create webhook: no secret")
	}
	cursor, err := seqOf(w.State.Cursor)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	if w.State.Status == "" {
		w.State.Status = webhooks.Active
	}
	now := storedNow()
	w.CreatedAt, w.UpdatedAt = now, now
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "INSERT INTO webhook_endpoints ("+webhookCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			w.ID, w.TeamID, w.URL, w.Description, typesJSON(w.EventTypes), w.Keys.Current.Reveal(), "", nil,
			string(w.State.Status), cursor, nil, 0, nil, "", "", micros(now), micros(now))
		if isUniqueViolation(err) {
			return fmt.Errorf("webhook %s: %w", w.ID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		return nil
	})
}

// GetWebhook reads an endpoint of a team; teamID "" reads it whatever its
// team (the delivery worker knows only the id).
func (r *reads) GetWebhook(ctx context.Context, teamID, id string) (*Webhook, error) {
	q := "SELECT " + webhookCols + " FROM webhook_endpoints WHERE id = ?"
	args := []any{id}
	if teamID != "" {
		q += " AND team_id = ?"
		args = append(args, teamID)
	}
	return scanWebhook(r.on.queryRow(ctx, q, args...))
}

// ListWebhooks reads a team's endpoints, oldest first; teamID "" reads
// every team's.
func (r *reads) ListWebhooks(ctx context.Context, teamID string) ([]Webhook, error) {
	q := "SELECT " + webhookCols + " FROM webhook_endpoints"
	var args []any
	if teamID != "" {
		q += " WHERE team_id = ?"
		args = append(args, teamID)
	}
	rows, err := r.on.query(ctx, q+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *w)
	}
	return out, rows.Err()
}

// ActiveWebhookIDs returns the ids of a team's endpoints that are not
// disabled: the ones to wake when the team's feed grows.
func (r *reads) ActiveWebhookIDs(ctx context.Context, teamID string) ([]string, error) {
	rows, err := r.on.query(ctx, "SELECT id FROM webhook_endpoints WHERE team_id = ? AND status <> 'disabled'", teamID)
	if err != nil {
		return nil, fmt.Errorf("list active webhooks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// WebhooksDue returns the endpoints that have work at now: not disabled,
// not waiting for a retry later than now, and behind their team's feed.
// The scheduler's sweep triggers them, so a lost trigger costs at most a
// sweep's delay.
func (r *reads) WebhooksDue(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := r.on.query(ctx, `SELECT w.id FROM webhook_endpoints w
		WHERE w.status <> 'disabled' AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= ?)
		AND EXISTS (SELECT 1 FROM events e WHERE e.team_id = w.team_id AND e.seq > w.cursor)`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("webhooks due: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// WebhookLag is how far an endpoint is behind its team's feed: how many
// events follow its cursor (of every type: those the endpoint did not
// select move the cursor as the worker passes them) and when the first of
// them was committed (zero when caught up).
type WebhookLag struct {
	Behind int64
	Oldest time.Time
}

// WebhookLag reads an endpoint's lag.
func (r *reads) WebhookLag(ctx context.Context, w *Webhook) (WebhookLag, error) {
	var lag WebhookLag
	cursor, err := seqOf(w.State.Cursor)
	if err != nil {
		return lag, err
	}
	var oldest sql.NullInt64
	err = r.on.queryRow(ctx, "SELECT COUNT(*), MIN(occurred_at) FROM events WHERE team_id = ? AND seq > ?", w.TeamID, cursor).Scan(&lag.Behind, &oldest)
	if err != nil {
		return lag, fmt.Errorf("webhook lag: %w", err)
	}
	lag.Oldest = fromNullMicros(oldest)
	return lag, nil
}

// WebhookStateStats counts the endpoints in one state and the commit time
// of the oldest event one of them has yet to deliver (zero when all are
// caught up).
type WebhookStateStats struct {
	Endpoints int
	Oldest    time.Time
}

// WebhookStats reads every endpoint's state for the metrics.
func (r *reads) WebhookStats(ctx context.Context) (map[webhooks.Status]WebhookStateStats, error) {
	rows, err := r.on.query(ctx, `SELECT w.status, COUNT(*), MIN((SELECT e.occurred_at FROM events e
		WHERE e.team_id = w.team_id AND e.seq > w.cursor ORDER BY e.seq LIMIT 1))
		FROM webhook_endpoints w GROUP BY w.status`)
	if err != nil {
		return nil, fmt.Errorf("webhook stats: %w", err)
	}
	defer rows.Close()
	out := map[webhooks.Status]WebhookStateStats{}
	for rows.Next() {
		var status string
		var st WebhookStateStats
		var oldest sql.NullInt64
		if err := rows.Scan(&status, &st.Endpoints, &oldest); err != nil {
			return nil, err
		}
		st.Oldest = fromNullMicros(oldest)
		out[webhooks.Status(status)] = st
	}
	return out, rows.Err()
}

// DeleteWebhook removes an endpoint and its delivery log.
func (s *Store) DeleteWebhook(ctx context.Context, teamID, id string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, "DELETE FROM webhook_endpoints WHERE id = ? AND team_id = ?", id, teamID)
		if err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.exec(ctx, "DELETE FROM webhook_deliveries WHERE endpoint_id = ?", id); err != nil {
			return fmt.Errorf("delete webhook deliveries: %w", err)
		}
		return nil
	})
}

// UpdateWebhook applies an admin change to an endpoint: fn may change its
// Keys, State, URL, EventTypes and Description. The row is locked for the
// read-modify-write (on SQLite the single writer serialises), so a
// delivery's SaveState that started from the old state fails with
// webhooks.ErrStateChanged afterwards when the cursor or status changed.
func (s *Store) UpdateWebhook(ctx context.Context, teamID, id string, fn func(w *Webhook) error) (*Webhook, error) {
	var out *Webhook
	err := s.WithTx(ctx, func(tx *Tx) error {
		q := "SELECT " + webhookCols + " FROM webhook_endpoints WHERE id = ? AND team_id = ?"
		if s.engine == Postgres {
			q += " FOR UPDATE"
		}
		w, err := scanWebhook(tx.queryRow(ctx, q, id, teamID))
		if err != nil {
			return err
		}
		if err := fn(w); err != nil {
			return err
		}
		cursor, err := seqOf(w.State.Cursor)
		if err != nil {
			return err
		}
		prev := ""
		var prevUntil any
		if !w.Keys.Previous.IsZero() {
			prev, prevUntil = w.Keys.Previous.Reveal(), micros(w.Keys.PreviousUntil)
		}
		w.UpdatedAt = storedNow()
		_, err = tx.exec(ctx, `UPDATE webhook_endpoints SET url = ?, description = ?, event_types = ?, secret = ?, prev_secret = ?, prev_until = ?,
			status = ?, cursor = ?, failing_since = ?, attempts = ?, next_attempt_at = ?, last_error = ?, disabled_reason = ?, updated_at = ? WHERE id = ?`,
			w.URL, w.Description, typesJSON(w.EventTypes), w.Keys.Current.Reveal(), prev, prevUntil,
			string(w.State.Status), cursor, nullMicros(w.State.FailingSince), w.State.Attempts, nullMicros(w.State.NextAttemptAt),
			w.State.LastError, w.State.DisabledReason, micros(w.UpdatedAt), w.ID)
		if err != nil {
			return fmt.Errorf("update webhook: %w", err)
		}
		out = w
		return nil
	})
	return out, err
}

// EventsAfter implements webhooks.EventSource: the team's events after
// cursor, in feed order, each with the body the feed shows.
func (s *Store) EventsAfter(ctx context.Context, teamID, cursor string, limit int) ([]webhooks.Event, error) {
	after, err := seqOf(cursor)
	if err != nil {
		return nil, err
	}
	evs, err := s.ListEvents(ctx, teamID, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]webhooks.Event, 0, len(evs))
	for i := range evs {
		body, err := evs[i].FeedBody()
		if err != nil {
			return nil, err
		}
		out = append(out, webhooks.Event{ID: idOf(evs[i].Seq), Type: evs[i].Type, Body: body})
	}
	return out, nil
}

// SaveState implements webhooks.StateSink: it stores the endpoint's new
// state only if its cursor and status are still from's, and appends the
// attempt to the delivery log in the same transaction.
func (s *Store) SaveState(ctx context.Context, endpointID string, from, to webhooks.State, a *webhooks.Attempt) error {
	fromCursor, err := seqOf(from.Cursor)
	if err != nil {
		return err
	}
	toCursor, err := seqOf(to.Cursor)
	if err != nil {
		return err
	}
	return s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE webhook_endpoints SET status = ?, cursor = ?, failing_since = ?, attempts = ?, next_attempt_at = ?,
			last_error = ?, disabled_reason = ?, updated_at = ? WHERE id = ? AND cursor = ? AND status = ?`,
			string(to.Status), toCursor, nullMicros(to.FailingSince), to.Attempts, nullMicros(to.NextAttemptAt),
			to.LastError, to.DisabledReason, micros(storedNow()), endpointID, fromCursor, string(from.Status))
		if err != nil {
			return fmt.Errorf("save webhook state: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return webhooks.ErrStateChanged
		}
		if to.Status == webhooks.Disabled && from.Status != webhooks.Disabled {
			if err := tx.appendDisabled(ctx, endpointID, to.DisabledReason); err != nil {
				return err
			}
		}
		if a == nil {
			return nil
		}
		ev, err := seqOf(a.EventID)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, "INSERT INTO webhook_deliveries (endpoint_id, event_id, at, status, outcome, duration_us, error, response, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			endpointID, ev, micros(a.At), a.StatusCode, a.Outcome.String(), a.Duration.Microseconds(), a.Error, a.Response, a.Truncated)
		if err != nil {
			return fmt.Errorf("log webhook attempt: %w", err)
		}
		return nil
	})
}

// EventWebhookDisabled is the feed's event for an endpoint that delivery
// disabled (3 days of failures, or 410 Gone).
const EventWebhookDisabled = "webhook.disabled"

// appendDisabled appends the team's webhook.disabled event.
func (tx *Tx) appendDisabled(ctx context.Context, endpointID, reason string) error {
	var teamID string
	if err := tx.queryRow(ctx, "SELECT team_id FROM webhook_endpoints WHERE id = ?", endpointID).Scan(&teamID); err != nil {
		return fmt.Errorf("read webhook team: %w", err)
	}
	// The URL stays out: its query may hold the receiver's own token.
	data, _ := json.Marshal(map[string]string{"endpoint_id": endpointID, "reason": reason})
	return tx.AppendEvents(ctx, teamID, []Event{{Type: EventWebhookDisabled, Data: data}})
}

// ListWebhookDeliveries reads an endpoint's delivery log, newest first,
// starting below beforeID (0: from the newest).
func (r *reads) ListWebhookDeliveries(ctx context.Context, endpointID string, beforeID int64, limit int) ([]WebhookDelivery, error) {
	q := "SELECT id, endpoint_id, event_id, at, status, outcome, duration_us, error, response, truncated FROM webhook_deliveries WHERE endpoint_id = ?"
	args := []any{endpointID}
	if beforeID > 0 {
		q += " AND id < ?"
		args = append(args, beforeID)
	}
	args = append(args, limit)
	rows, err := r.on.query(ctx, q+" ORDER BY id DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []WebhookDelivery
	for rows.Next() {
		var d WebhookDelivery
		var ev, at, dur int64
		if err := rows.Scan(&d.ID, &d.EndpointID, &ev, &at, &d.StatusCode, &d.Outcome, &dur, &d.Error, &d.Response, &d.Truncated); err != nil {
			return nil, err
		}
		d.EventID, d.At, d.Duration = idOf(ev), fromMicros(at), time.Duration(dur)*time.Microsecond
		out = append(out, d)
	}
	return out, rows.Err()
}

// PruneWebhookDeliveries deletes delivery attempts made before before.
func (s *Store) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, "DELETE FROM webhook_deliveries WHERE at < ?", micros(before))
		if err != nil {
			return fmt.Errorf("prune webhook deliveries: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// FeedEvent is an event as the feed shows it: the answer of GET
// /teams/{team}/events, the body of a webhook delivery and the data of a
// stream message are all this, so they never drift apart.
type FeedEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	OccurredAt  time.Time       `json:"occurred_at"`
	DirectoryID string          `json:"directory_id"`
	Data        json.RawMessage `json:"data"`
}

// Feed returns the event as the feed shows it.
func (e *Event) Feed() FeedEvent {
	return FeedEvent{ID: idOf(e.Seq), Type: e.Type, OccurredAt: e.OccurredAt, DirectoryID: e.DirectoryID, Data: e.Data}
}

// FeedBody is Feed as JSON, encoded as the API encodes it (no HTML
// escaping), without a trailing newline.
func (e *Event) FeedBody() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e.Feed()); err != nil {
		return nil, fmt.Errorf("render event %d: %w", e.Seq, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// eventHooks are called after a commit that appended events.
type eventHooks struct {
	mu sync.RWMutex
	fs []func(teamID string)
}

// OnEventsCommitted registers f to be called, after each commit that
// appended events to a team's feed, with the team's id. f runs on the
// committing goroutine (on SQLite, the caller of WithTx, after the batch
// committed) and must not block.
func (s *Store) OnEventsCommitted(f func(teamID string)) {
	s.hooks.mu.Lock()
	s.hooks.fs = append(s.hooks.fs, f)
	s.hooks.mu.Unlock()
}

func (s *Store) eventsCommitted(teamID string) {
	s.hooks.mu.RLock()
	fs := s.hooks.fs
	s.hooks.mu.RUnlock()
	for _, f := range fs {
		f(teamID)
	}
}
