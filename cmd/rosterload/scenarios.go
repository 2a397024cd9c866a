package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"sync/atomic"
	"time"
)

// scenario holds what every scenario needs.
type scenario struct {
	c      *client
	srv    *serverProc
	cfg    config
	runID  string
	serial atomic.Int64 // unique userName counter
	log    func(format string, args ...any)
	report *Report
}

func (s *scenario) userName() string {
	return fmt.Sprintf("load-%s-%d@load.example", s.runID, s.serial.Add(1))
}

func (s *scenario) measure(l loop, ctx context.Context) loopResult {
	if s.cfg.warmup > 0 && l.n <= 0 {
		w := l
		w.dur, w.name, w.names = s.cfg.warmup, "warm-up", nil
		w.op = func(ctx context.Context, wk, i int) (int, *response, error) {
			_, res, err := l.op(ctx, wk, i)
			return 0, res, err
		}
		s.log("%s: warming up for %v", l.name, s.cfg.warmup)
		r := w.run(ctx, s.srv)
		if r.ranOut {
			return r
		}
	}
	s.log("%s: %d clients, %s", l.name, l.conc, span(l))
	r := l.run(ctx, s.srv)
	for _, p := range r.phases {
		p.LoadAvg = loadAvg()
		if s.srv != nil {
			p.ServerRSSMiB = s.srv.rssMiB()
		}
		s.report.Phases = append(s.report.Phases, p)
		if !s.cfg.json {
			p.print(s.cfg.out)
		}
	}
	return r
}

func span(l loop) string {
	if l.n > 0 {
		return fmt.Sprintf("%d requests", l.n)
	}
	return l.dur.String()
}

// createUser is one POST /Users that must answer 201 with an id.
func (s *scenario) createUser(ctx context.Context) (string, *response, error) {
	name := s.userName()
	res, err := s.c.scim(ctx, "POST", "/Users", userBody(name))
	if err != nil || res.status != http.StatusCreated {
		return name, res, err
	}
	if idOf(res) == "" {
		return name, res, &badAnswer{"201 without an id: " + truncate(string(res.body), 200)}
	}
	return name, res, nil
}

// --- creates -----------------------------------------------------------

func (s *scenario) creates(ctx context.Context) error {
	s.measure(loop{name: "creates (POST /Users)", conc: s.cfg.conc, dur: s.cfg.dur, n: s.cfg.n, op: func(ctx context.Context, _, _ int) (int, *response, error) {
		_, res, err := s.createUser(ctx)
		return 0, res, err
	}}, ctx)
	return nil
}

// seeded is a user made for a scenario.
type seeded struct{ id, userName string }

// seed creates n users with conc clients (its numbers are reported as a
// phase of their own: they are creates too). It fails on any error, since
// what follows depends on every user existing.
func (s *scenario) seed(ctx context.Context, n int) ([]seeded, error) {
	out := make([]seeded, n)
	s.log("seeding %d users", n)
	r := loop{name: fmt.Sprintf("seed: creates of %d users", n), conc: s.cfg.seedConc, n: n, op: func(ctx context.Context, _, i int) (int, *response, error) {
		name, res, err := s.createUser(ctx)
		if err == nil && res.status == http.StatusCreated {
			out[i] = seeded{idOf(res), name}
		}
		return 0, res, err
	}}.run(ctx, s.srv)
	p := r.phases[0]
	p.LoadAvg = loadAvg()
	p.ServerRSSMiB = s.srv.rssMiB()
	s.report.Phases = append(s.report.Phases, p)
	if !s.cfg.json {
		p.print(s.cfg.out)
	}
	if p.Errors > 0 {
		return nil, fmt.Errorf("seeding failed: %d of %d creates were errors (see above); with roster's default per-directory rate limit, use -spawn -scim-rate-limit 0 or lower -c", p.Errors, n)
	}
	return out, ctx.Err()
}

// --- filters -------------------------------------------------------------

func (s *scenario) filters(ctx context.Context) error {
	users, err := s.seed(ctx, s.cfg.seed)
	if err != nil {
		return err
	}
	s.measure(loop{name: "filters (GET userName eq)", conc: s.cfg.conc, dur: s.cfg.dur, n: s.cfg.n, op: func(ctx context.Context, _, _ int) (int, *response, error) {
		u := users[rand.IntN(len(users))]
		q := url.QueryEscape(fmt.Sprintf(`userName eq "%s"`, u.userName))
		res, err := s.c.scim(ctx, "GET", "/Users?filter="+q, nil)
		if err == nil && res.status == http.StatusOK && !bytes.Contains(res.body, []byte(u.id)) {
			return 0, res, &badAnswer{fmt.Sprintf("filter for %s did not return id %s: %s", u.userName, u.id, truncate(string(res.body), 200))}
		}
		return 0, res, err
	}}, ctx)
	return nil
}

// --- member-adds ----------------------------------------------------------

func (s *scenario) memberAdds(ctx context.Context) error {
	users, err := s.seed(ctx, s.cfg.seed)
	if err != nil {
		return err
	}
	gid, err := s.c.createGroup(ctx, "load-"+s.runID)
	if err != nil {
		return err
	}
	var next atomic.Int64
	s.measure(loop{name: "member-adds (PATCH add 1)", conc: s.cfg.conc, dur: s.cfg.dur, n: s.cfg.n, op: func(ctx context.Context, _, _ int) (int, *response, error) {
		i := int(next.Add(1) - 1)
		if i >= len(users) {
			return 0, nil, errDone
		}
		res, err := s.c.scim(ctx, "PATCH", "/Groups/"+gid, addMembers(users[i].id))
		return 0, res, err
	}}, ctx)
	return nil
}

// --- big-group-patch ----------------------------------------------------

func (s *scenario) bigGroupPatch(ctx context.Context) error {
	sizes := append([]int(nil), s.cfg.sizes...)
	sort.Ints(sizes)
	largest := sizes[len(sizes)-1]
	// Every size shares the first users; each client gets one extra user it
	// adds and removes again.
	users, err := s.seed(ctx, largest+s.cfg.conc)
	if err != nil {
		return err
	}
	extra := users[largest:]
	for _, size := range sizes {
		gid, err := s.c.createGroup(ctx, fmt.Sprintf("big-%s-%d", s.runID, size))
		if err != nil {
			return err
		}
		if err := s.fill(ctx, gid, users[:size]); err != nil {
			return err
		}
		if err := s.waitGroupCount(ctx, gid, size); err != nil {
			return err
		}
		name := fmt.Sprintf("one-member PATCH, %d-member group", size)
		in := make([]bool, s.cfg.conc) // in[w]: worker w's user is in the group
		s.measure(loop{names: []string{name + ": add", name + ": remove"}, name: name, conc: s.cfg.conc, dur: s.cfg.dur, n: s.cfg.n,
			op: func(ctx context.Context, w, i int) (int, *response, error) {
				u := extra[w].id
				// Each client alternates add and remove of its own user,
				// so every request changes the group.
				if !in[w] {
					res, err := s.c.scim(ctx, "PATCH", "/Groups/"+gid, addMembers(u))
					if err == nil && res.status/100 == 2 {
						in[w] = true
					}
					return 0, res, err
				}
				res, err := s.c.scim(ctx, "PATCH", "/Groups/"+gid, removeMember(u))
				if err == nil && res.status/100 == 2 {
					in[w] = false
				}
				return 1, res, err
			}}, ctx)
	}
	return nil
}

// fill adds members to a group with PATCHes of many values each.
func (s *scenario) fill(ctx context.Context, gid string, users []seeded) error {
	start := time.Now()
	batch := s.cfg.fillBatch
	for i := 0; i < len(users); i += batch {
		ids := make([]string, 0, batch)
		for _, u := range users[i:min(i+batch, len(users))] {
			ids = append(ids, u.id)
		}
		res, err := s.c.scim(ctx, "PATCH", "/Groups/"+gid, addMembers(ids...))
		if err != nil {
			return fmt.Errorf("fill group: %w", err)
		}
		if res.status/100 != 2 {
			return fmt.Errorf("fill group: PATCH of %d members: status %d: %s", len(ids), res.status, truncate(string(res.body), 300))
		}
	}
	s.log("filled group with %d members in %v (%d-member PATCHes)", len(users), time.Since(start).Round(time.Millisecond), batch)
	return nil
}

// waitGroupCount waits until the roster shows the group with want members,
// so the timed PATCHes do not share the CPU with the fill's reconcile.
func (s *scenario) waitGroupCount(ctx context.Context, gid string, want int) error {
	if s.c.teamID == "" {
		s.log("team unknown (-scim-token given): not waiting for the roster to show the group")
		return nil
	}
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	last := -1
	for time.Now().Before(deadline) {
		cursor := ""
		for {
			var page struct {
				Groups []struct {
					ID          string `json:"id"`
					Name        string `json:"name"`
					MemberCount int    `json:"member_count"`
				} `json:"groups"`
				NextCursor string `json:"next_cursor"`
			}
			if err := s.c.mustAdmin(ctx, http.StatusOK, "GET", "/teams/"+s.c.teamID+"/groups?limit=1000&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
				return err
			}
			for _, g := range page.Groups {
				if g.ID == gid {
					last = g.MemberCount
				}
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if last == want {
			s.log("roster shows the group with %d members after %v", want, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the roster does not show the group with %d members after 5 minutes (last seen: %d)", want, last)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
