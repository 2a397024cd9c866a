package api

import (
	"bytes"

	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Hub wakes event streams when their team's feed grows. The store calls
// Notify after each commit that appended events (Store.OnEventsCommitted);
// a stream waits on its subscription instead of polling the store.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[chan struct{}]struct{}{}} }

// Notify wakes the team's streams. It never blocks: a stream that has a
// wake-up pending reads everything new when it gets to it.
func (h *Hub) Notify(teamID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[teamID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel that receives a value after the team's feed
// grew, and the function that ends the subscription.
func (h *Hub) Subscribe(teamID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[teamID] == nil {
		h.subs[teamID] = map[chan struct{}]struct{}{}
	}
	h.subs[teamID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[teamID], ch)
		if len(h.subs[teamID]) == 0 {
			delete(h.subs, teamID)
		}
		h.mu.Unlock()
	}
}

// Stream settings and their defaults.
const (
	DefaultMaxStreams  = 256
	DefaultHeartbeat   = 15 * time.Second
	streamPageSize     = 100
	streamRetryMillis  = 2000
	streamWriteTimeout = 10 * time.Second
)

// Streams configures GET /teams/{team}/events/stream.
type Streams struct {
	// Hub wakes streams when this process commits events; nil makes
	// streams rely on Poll alone.
	Hub *Hub
	// Poll is how often a waiting stream reads the store anyway, for
	// events committed by other processes (replicas on PostgreSQL); 0
	// never (one process holds the database: SQLite). Default set by the
	// caller.
	Poll time.Duration
	// Heartbeat is how often an idle stream sends a comment, so proxies
	// and clients see it alive; default 15 s.
	Heartbeat time.Duration
	// Max bounds the streams open at once in this process; default 256.
	Max int

	mu     sync.Mutex
	open   int
	stop   chan struct{}
	closed bool
}

// Close ends the open streams and refuses new ones: http.Server.Shutdown
// waits for requests to finish and does not cancel them, and a stream
// never finishes on its own. Clients reconnect, with Last-Event-ID, to
// another replica or to this one restarted.
func (st *Streams) Close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stop == nil {
		st.stop = make(chan struct{})
	}
	if !st.closed {
		close(st.stop)
		st.closed = true
	}
}

func (st *Streams) stopped() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stop == nil {
		st.stop = make(chan struct{})
	}
	return st.stop
}

func (st *Streams) acquire() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	limit := st.Max
	if limit <= 0 {
		limit = DefaultMaxStreams
	}
	if st.open >= limit {
		return false
	}
	st.open++
	return true
}

func (st *Streams) release() {
	st.mu.Lock()
	st.open--
	st.mu.Unlock()
}

// streamEvents serves the team's feed as Server-Sent Events: each event is
// "id: <event id>", "event: <type>" and "data: <the event as GET /events
// shows it>". It starts after Last-Event-ID when the client sends it (a
// browser's EventSource does on reconnect, while the URL still carries the
// first ?after=), else after ?after=, else at the start of the feed.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) *apiError {
	t, aerr := s.team(r)
	if aerr != nil {
		return aerr
	}
	cursor := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	from := "Last-Event-ID"
	if cursor == "" {
		cursor, from = r.URL.Query().Get("after"), "after"
	}
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, CodeBadRequest, "%s must be an event id, got %q", from, cursor)
		}
		after = n
	}
	st := &s.Streams
	if !st.acquire() {
		w.Header().Set("Retry-After", "5")
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "too many event streams open on this server; retry later")
	}
	defer st.release()

	ctx := r.Context()
	stop := st.stopped()
	var wake <-chan struct{}
	if st.Hub != nil {
		ch, unsubscribe := st.Hub.Subscribe(t.ID) // before the first read: no commit slips between
		defer unsubscribe()
		wake = ch
	}
	var poll <-chan time.Time
	if st.Poll > 0 {
		tk := time.NewTicker(st.Poll)
		defer tk.Stop()
		poll = tk.C
	}
	hbEvery := st.Heartbeat
	if hbEvery <= 0 {
		hbEvery = DefaultHeartbeat
	}
	hb := time.NewTicker(hbEvery)
	defer hb.Stop()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte(fmt.Sprintf("retry: %d\n\n", streamRetryMillis))) {
		return nil
	}
	var buf bytes.Buffer
	for {
		// Send everything after the cursor, a page at a time.
		for {
			evs, err := s.Store.ListEvents(ctx, t.ID, after, streamPageSize)
			if err != nil {
				if ctx.Err() == nil {
					s.log().Warn("event stream: read events", "team", t.ID, "err", err)
				}
				return nil // the client reconnects with Last-Event-ID
			}
			buf.Reset()
			for i := range evs {
				body, err := evs[i].FeedBody()
				if err != nil {
					s.log().Warn("event stream: render", "team", t.ID, "err", err)
					return nil
				}
				fmt.Fprintf(&buf, "id: %d\nevent: %s\ndata: %s\n\n", evs[i].Seq, sseField(evs[i].Type), body)
				after = evs[i].Seq
			}
			if buf.Len() > 0 && !send(buf.Bytes()) {
				return nil
			}
			if len(evs) < streamPageSize {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-wake:
		case <-poll:
		case <-hb.C:
			if !send([]byte(": heartbeat\n\n")) {
				return nil
			}
		}
	}
}

// sseField keeps a value on one line of the stream.
func sseField(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
