package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// recorder collects latencies and outcomes of one measured phase. Each
// worker appends to its own shard; merge sorts once at the end.
type recorder struct {
	mu      sync.Mutex
	lat     []time.Duration
	ok      int
	status  map[string]int    // failures by kind: HTTP status, "transport", "bad_answer"
	samples map[string]string // first detail seen per kind
}

func newRecorder() *recorder {
	return &recorder{status: map[string]int{}, samples: map[string]string{}}
}

// shard is a worker's private buffer, flushed into the recorder when done.
type shard struct {
	lat     []time.Duration
	ok      int
	status  map[string]int
	samples map[string]string
}

func newShard() *shard {
	return &shard{status: map[string]int{}, samples: map[string]string{}}
}

// badAnswer is a 2xx answer that is wrong (a filter that found nothing, a
// create without an id): counted as an error, never as a success.
type badAnswer struct{ detail string }

func (b *badAnswer) Error() string { return b.detail }

// add records one request: its latency always (failures cost time too, and
// hiding them would flatter the percentiles), and its outcome.
func (s *shard) add(d time.Duration, res *response, err error) {
	s.lat = append(s.lat, d)
	kind, detail := "", ""
	var bad *badAnswer
	switch {
	case errors.As(err, &bad):
		kind, detail = "bad_answer", bad.detail
	case err != nil:
		kind, detail = "transport", err.Error()
	case res.status >= 200 && res.status < 300:
		s.ok++
		return
	default:
		kind, detail = strconv.Itoa(res.status), string(res.body)
	}
	s.status[kind]++
	if _, ok := s.samples[kind]; !ok {
		s.samples[kind] = truncate(detail, 300)
	}
}

func (r *recorder) merge(s *shard) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat = append(r.lat, s.lat...)
	r.ok += s.ok
	for k, v := range s.status {
		r.status[k] += v
		if _, ok := r.samples[k]; !ok {
			r.samples[k] = s.samples[k]
		}
	}
}

func (r *recorder) errors() int {
	n := 0
	for _, v := range r.status {
		n += v
	}
	return n
}

// Phase is the JSON and text summary of one measured phase.
type Phase struct {
	Name         string            `json:"name"`
	Concurrency  int               `json:"concurrency"`
	Requests     int               `json:"requests"`
	OK           int               `json:"ok"`
	Errors       int               `json:"errors"`
	ByStatus     map[string]int    `json:"errors_by_status,omitempty"`
	ErrorSample  map[string]string `json:"error_samples,omitempty"`
	Seconds      float64           `json:"seconds"`
	PerSecond    float64           `json:"per_second"` // successful requests per second
	Latency      Percentiles       `json:"latency_ms"`
	ServerCPU    *ServerCPU        `json:"server_cpu,omitempty"`
	ClientCPU    *ServerCPU        `json:"client_cpu,omitempty"` // the load tool itself
	ServerRSSMiB float64           `json:"server_rss_mib,omitempty"`
	LoadAvg      string            `json:"load_avg"` // 1, 5 and 15 minute load average at the phase's end
	Notes        []string          `json:"notes,omitempty"`
}

// Percentiles in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: ms(ds[len(ds)-1]), Mean: ms(sum / time.Duration(len(ds)))}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *recorder) phase(name string, conc int, elapsed time.Duration) Phase {
	p := Phase{Name: name, Concurrency: conc, Requests: len(r.lat), OK: r.ok, Errors: r.errors(), Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		p.PerSecond = float64(r.ok) / elapsed.Seconds()
	}
	p.Latency = percentiles(r.lat)
	if len(r.status) > 0 {
		p.ByStatus = r.status
		p.ErrorSample = r.samples
	}
	return p
}

func (p Phase) print(w io.Writer) {
	fmt.Fprintf(w, "%-28s c=%-3d %8d req  %8.0f ok/s  p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %8.2f ms  errors %d\n",
		p.Name, p.Concurrency, p.Requests, p.PerSecond, p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.Max, p.Errors)
	keys := make([]string, 0, len(p.ByStatus))
	for k := range p.ByStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "    %s × %d, e.g. %s\n", k, p.ByStatus[k], p.ErrorSample[k])
	}
	if p.ServerCPU != nil {
		fmt.Fprintf(w, "    roster process: %.2f cores busy, %.0f µs CPU per request, RSS %.0f MiB\n", p.ServerCPU.Cores, p.ServerCPU.PerRequestUs, p.ServerRSSMiB)
	}
	if p.ClientCPU != nil {
		fmt.Fprintf(w, "    load tool: %.2f cores busy, %.0f µs CPU per request\n", p.ClientCPU.Cores, p.ClientCPU.PerRequestUs)
	}
	if p.LoadAvg != "" {
		fmt.Fprintf(w, "    load average %s\n", p.LoadAvg)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "    note: %s\n", n)
	}
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
