package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// LagResult is the lag scenario's summary.
type LagResult struct {
	Write        string      `json:"write"` // create or patch
	Rate         float64     `json:"target_rate"`
	AchievedRate float64     `json:"achieved_rate"`
	Seconds      float64     `json:"seconds"`
	Writes       Phase       `json:"writes"`
	Seen         int         `json:"seen"`
	Unseen       int         `json:"unseen"` // successful writes never seen in the feed
	Unexpected   int         `json:"unexpected"`
	FromSend     Percentiles `json:"lag_from_request_start_ms"`
	FromAnswer   Percentiles `json:"lag_from_response_ms"`
	Commit       Percentiles `json:"commit_lag_ms"` // event occurred_at − request start (no polling error)
	SendSlip     Percentiles `json:"send_slip_ms"`  // request start − scheduled start
	Polls        int         `json:"polls"`
	PollErrors   int         `json:"poll_errors"`
	PollLatency  Percentiles `json:"poll_latency_ms"`
	Drain        float64     `json:"drain_seconds"`
	LoadAvg      string      `json:"load_avg"`
	Notes        []string    `json:"notes,omitempty"`
}

type sighting struct{ seen, occurred time.Time }

// feed follows a team's event feed in one goroutine and remembers when each
// email's event of the given type first came back.
type feed struct {
	c        *client
	kind     string // member.added or membership.added
	group    string // for membership.added: only this group's events
	interval time.Duration

	mu       sync.Mutex
	cursor   string
	seen     map[string]sighting
	count    int // matching events, including ones for emails we did not write
	polls    int
	pollErrs int
	pollLat  []time.Duration
	lastErr  string
}

type feedEvent struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Data       struct {
		Email  string `json:"email"`
		Member struct {
			Email string `json:"email"`
		} `json:"member"`
		Group *struct {
			ID string `json:"id"`
		} `json:"group"`
	} `json:"data"`
}

// poll reads one page; it reports whether the page was full (more waiting).
func (f *feed) poll(ctx context.Context) (bool, error) {
	const limit = 1000
	t0 := time.Now()
	res, err := f.c.admin(ctx, "GET", fmt.Sprintf("/teams/%s/events?after=%s&limit=%d", f.c.teamID, url.QueryEscape(f.cursor), limit), nil)
	t1 := time.Now()
	if err != nil && ctx.Err() != nil {
		return false, err // the poll was cut short by the end of the run, not failed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	f.pollLat = append(f.pollLat, t1.Sub(t0))
	if err == nil && res.status != http.StatusOK {
		err = fmt.Errorf("events: status %d: %s", res.status, truncate(string(res.body), 200))
	}
	var page struct {
		Events     []feedEvent `json:"events"`
		NextCursor string      `json:"next_cursor"`
	}
	if err == nil {
		err = json.Unmarshal(res.body, &page)
	}
	if err != nil {
		f.pollErrs++
		f.lastErr = err.Error()
		return false, err
	}
	for _, e := range page.Events {
		if e.Type != f.kind {
			continue
		}
		if f.group != "" && (e.Data.Group == nil || e.Data.Group.ID != f.group) {
			continue
		}
		email := e.Data.Member.Email
		if email == "" {
			email = e.Data.Email
		}
		f.count++
		if _, ok := f.seen[email]; !ok {
			// Seen no later than when this answer arrived.
			f.seen[email] = sighting{seen: t1, occurred: e.OccurredAt}
		}
	}
	if page.NextCursor != "" {
		f.cursor = page.NextCursor
	}
	return len(page.Events) == limit, nil
}

// follow polls until ctx ends: at once after a full page, after interval
// otherwise.
func (f *feed) follow(ctx context.Context) {
	for ctx.Err() == nil {
		full, err := f.poll(ctx)
		if full && err == nil {
			continue
		}
		wait := f.interval
		if err != nil {
			wait = 100 * time.Millisecond
		}
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

// skipToEnd moves the cursor past every event already in the feed.
func (f *feed) skipToEnd(ctx context.Context) error {
	for {
		full, err := f.poll(ctx)
		if err != nil {
			return err
		}
		if !full {
			return nil
		}
	}
}

type lagWrite struct {
	email           string
	scheduled, sent time.Time
	answered        time.Time
	ok              bool
}

func (s *scenario) lag(ctx context.Context) error {
	if s.c.teamID == "" {
		return fmt.Errorf("the lag scenario reads the team's event feed: let rosterload create the team (do not pass -scim-token)")
	}
	rate := s.cfg.rate
	total := int(rate * s.cfg.dur.Seconds())
	if s.cfg.n > 0 {
		total = s.cfg.n
	}
	if total < 1 || rate <= 0 {
		return fmt.Errorf("lag needs -rate > 0 and a duration or -n")
	}
	f := &feed{c: s.c, kind: "member.added", interval: s.cfg.pollEvery, seen: map[string]sighting{}}
	var users []seeded
	var gid string
	if s.cfg.lagWrite == "patch" {
		var err error
		if users, err = s.seed(ctx, total); err != nil {
			return err
		}
		if gid, err = s.c.createGroup(ctx, "lag-"+s.runID); err != nil {
			return err
		}
		// Wait until the seeded users are in the roster, so the
		// measurement does not share the CPU with their reconcile.
		start := time.Now()
		for f.count < len(users) {
			if _, err := f.poll(ctx); err != nil {
				return err
			}
			if time.Since(start) > 5*time.Minute {
				return fmt.Errorf("only %d of %d seeded users reached the roster after 5 minutes", f.count, len(users))
			}
		}
		s.log("seeded users in the roster after %v", time.Since(start).Round(time.Millisecond))
		f.kind, f.group = "membership.added", gid
	}
	if err := f.skipToEnd(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	f.seen, f.count, f.polls, f.pollErrs, f.pollLat = map[string]sighting{}, 0, 0, 0, nil
	f.mu.Unlock()

	fctx, stopFeed := context.WithCancel(ctx)
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); f.follow(fctx) }()
	defer func() { stopFeed(); <-feedDone }()

	s.log("lag: %d %s writes at %.0f/s (open loop), feed polled every %v", total, s.cfg.lagWrite, rate, s.cfg.pollEvery)
	writes := make([]lagWrite, total)
	rec := newRecorder()
	var recMu sync.Mutex
	sh := newShard()
	sem := make(chan struct{}, s.cfg.maxInflight)
	var wg sync.WaitGroup
	period := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(20 * time.Millisecond)
	cpu0 := s.srv.cpu()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * period)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{} // beyond maxInflight outstanding writes the schedule slips, and send_slip shows it
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w := &writes[i]
			w.scheduled = at
			var res *response
			var err error
			w.sent = time.Now()
			if users != nil {
				w.email = users[i].userName
				res, err = s.c.scim(ctx, "PATCH", "/Groups/"+gid, addMembers(users[i].id))
			} else {
				w.email, res, err = s.createUser(ctx)
			}
			w.answered = time.Now()
			w.ok = err == nil && res.status/100 == 2
			recMu.Lock()
			sh.add(w.answered.Sub(w.sent), res, err)
			recMu.Unlock()
		}()
	}
	wg.Wait()
	sendEnd := time.Now()
	cpu := s.srv.cpu() - cpu0
	rec.merge(sh)

	// Drain: wait until every successful write was seen, or give up.
	okCount := 0
	for _, w := range writes {
		if w.ok {
			okCount++
		}
	}
	drainStart := time.Now()
	for time.Since(drainStart) < s.cfg.drain {
		f.mu.Lock()
		missing := 0
		for _, w := range writes {
			if _, ok := f.seen[w.email]; w.ok && !ok {
				missing++
			}
		}
		f.mu.Unlock()
		if missing == 0 {
			break
		}
		if sleep(ctx, 20*time.Millisecond) != nil {
			break
		}
	}
	drain := time.Since(drainStart)
	stopFeed()
	<-feedDone

	out := LagResult{Write: s.cfg.lagWrite, Rate: rate, Seconds: sendEnd.Sub(start).Seconds(), Drain: drain.Seconds(), LoadAvg: loadAvg()}
	out.Writes = rec.phase("lag writes ("+s.cfg.lagWrite+")", s.cfg.maxInflight, sendEnd.Sub(start))
	out.Writes.LoadAvg = out.LoadAvg
	if s.srv != nil && s.srv.pid != 0 {
		el := sendEnd.Sub(start)
		out.Writes.ServerCPU = &ServerCPU{Cores: cpu.Seconds() / el.Seconds(), PerRequestUs: float64(cpu.Microseconds()) / float64(max(1, total))}
		out.Writes.ServerRSSMiB = s.srv.rssMiB()
	}
	out.AchievedRate = float64(len(rec.lat)) / out.Seconds
	var fromSend, fromAnswer, commit, slip []time.Duration
	mine := map[string]bool{}
	for _, w := range writes {
		if w.sent.IsZero() {
			continue
		}
		mine[w.email] = true
		slip = append(slip, w.sent.Sub(w.scheduled))
		if !w.ok {
			continue
		}
		sg, ok := f.seen[w.email]
		if !ok {
			out.Unseen++
			continue
		}
		out.Seen++
		fromSend = append(fromSend, sg.seen.Sub(w.sent))
		fromAnswer = append(fromAnswer, max(0, sg.seen.Sub(w.answered)))
		if !sg.occurred.IsZero() {
			commit = append(commit, sg.occurred.Sub(w.sent))
		}
	}
	for e := range f.seen {
		if !mine[e] {
			out.Unexpected++
		}
	}
	out.FromSend, out.FromAnswer, out.Commit, out.SendSlip = percentiles(fromSend), percentiles(fromAnswer), percentiles(commit), percentiles(slip)
	out.Polls, out.PollErrors, out.PollLatency = f.polls, f.pollErrs, percentiles(f.pollLat)
	if f.pollErrs > 0 {
		out.Notes = append(out.Notes, "last feed error: "+f.lastErr)
	}
	if out.Unseen > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%d successful writes were not in the feed %v after the last write", out.Unseen, s.cfg.drain))
	}
	s.report.Lag = append(s.report.Lag, out)
	if !s.cfg.json {
		out.print(s.cfg.out)
	}
	return nil
}

func (l LagResult) print(w io.Writer) {
	l.Writes.print(w)
	fmt.Fprintf(w, "lag (%s writes, target %.0f/s, achieved %.0f/s over %.1fs)\n", l.Write, l.Rate, l.AchievedRate, l.Seconds)
	fmt.Fprintf(w, "  seen %d, never seen %d (waited %.1fs after the last write), unexpected %d\n", l.Seen, l.Unseen, l.Drain, l.Unexpected)
	row := func(name string, p Percentiles) {
		fmt.Fprintf(w, "  %-34s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", name, p.P50, p.P99, p.Max)
	}
	row("request start → seen in feed", l.FromSend)
	row("response → seen in feed", l.FromAnswer)
	row("request start → event occurred_at", l.Commit)
	row("send slip (open-loop schedule)", l.SendSlip)
	fmt.Fprintf(w, "  feed: %d polls, %d errors, poll p50 %.2f ms p99 %.2f ms; load average %s\n", l.Polls, l.PollErrors, l.PollLatency.P50, l.PollLatency.P99, l.LoadAvg)
	for _, n := range l.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
