package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errDone ends a worker's loop: the scenario ran out of work (for example
// every seeded user has been added to the group).
var errDone = errors.New("no more work")

// op performs the i-th operation of a phase on worker w. It returns which
// of the phase's recorders the request belongs to (0 unless the phase
// splits its numbers, as add/remove does).
type op func(ctx context.Context, w, i int) (k int, res *response, err error)

// loop is a closed-loop phase: conc workers each send a request as soon
// as the previous one answered, for dur or until n requests were started.
type loop struct {
	name  string
	names []string // one per recorder when the phase is split
	conc  int
	dur   time.Duration
	n     int
	op    op
}

type loopResult struct {
	phases  []Phase
	elapsed time.Duration
	ranOut  bool
}

func (l loop) run(ctx context.Context, srv *serverProc) loopResult {
	names := l.names
	if len(names) == 0 {
		names = []string{l.name}
	}
	recs := make([]*recorder, len(names))
	for i := range recs {
		recs[i] = newRecorder()
	}
	var next atomic.Int64
	var ranOut atomic.Bool
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var deadline time.Time
	if l.n <= 0 {
		deadline = time.Now().Add(l.dur)
	}
	cpu0 := srv.cpu()
	self0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range l.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shards := make([]*shard, len(recs))
			for i := range shards {
				shards[i] = newShard()
			}
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if l.n > 0 && i >= l.n {
					break
				}
				if l.n <= 0 && time.Now().After(deadline) {
					break
				}
				t0 := time.Now()
				k, res, err := l.op(ctx, w, i)
				d := time.Since(t0)
				if errors.Is(err, errDone) {
					ranOut.Store(true)
					break
				}
				if ctx.Err() != nil {
					break // interrupted: the request did not get a fair answer
				}
				shards[k].add(d, res, err)
			}
			for i, s := range shards {
				recs[i].merge(s)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := srv.cpu() - cpu0
	self := selfCPU() - self0
	out := loopResult{elapsed: elapsed, ranOut: ranOut.Load()}
	for i, r := range recs {
		p := r.phase(names[i], l.conc, elapsed)
		if srv != nil && srv.pid != 0 && p.Requests > 0 {
			p.ServerCPU = &ServerCPU{Cores: cpu.Seconds() / elapsed.Seconds(), PerRequestUs: float64(cpu.Microseconds()) / float64(totalRequests(recs))}
		}
		if p.Requests > 0 {
			p.ClientCPU = &ServerCPU{Cores: self.Seconds() / elapsed.Seconds(), PerRequestUs: float64(self.Microseconds()) / float64(totalRequests(recs))}
		}
		if out.ranOut {
			p.Notes = append(p.Notes, "stopped early: the seeded users ran out (seed more with -seed)")
		}
		out.phases = append(out.phases, p)
	}
	return out
}

func totalRequests(recs []*recorder) int {
	n := 0
	for _, r := range recs {
		n += len(r.lat)
	}
	return n
}

// selfCPU is the CPU this process (the load tool) has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ServerCPU is what the spawned roster process spent during a phase
// (from /proc; only with -spawn). It includes roster's background work
// (reconciles, request log), which is part of the cost of a request.
type ServerCPU struct {
	Cores        float64 `json:"cores"`          // average CPU cores busy
	PerRequestUs float64 `json:"per_request_us"` // CPU microseconds per request
}
