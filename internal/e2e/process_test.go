package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roster-dev/roster/connectors/google/googlefake"
	"github.com/roster-dev/roster/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// rosterBinary builds cmd/roster once per test run.
func rosterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "roster-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "roster")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/roster-dev/roster/cmd/roster").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a roster process started from the binary.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	out  *bytes.Buffer
	mu   sync.Mutex
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(rosterBinary(t), append([]string{"serve", "--listen", addr, "--admin-token", AdminToken}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, cmd: cmd, addr: addr, out: &bytes.Buffer{}}
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("roster %v did not become healthy:\n%s", args, p.output())
	return nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) kill(sig syscall.Signal) {
	if p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// client returns a Roster that talks to the process over HTTP.
func (p *proc) client(t *testing.T) *Roster {
	return &Roster{T: t, URL: "http://" + p.addr, stop: func() {}}
}

type run struct {
	kind, dir  string
	pid        int
	start, end int64
}

// readRunLog parses ROSTER_RUN_LOG lines into runs; a run with no end line
// (killed) ends at +inf.
func readRunLog(t *testing.T, path string) []run {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	open := map[string]*run{}
	var out []run
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			continue
		}
		pid, _ := strconv.Atoi(f[3])
		ts, _ := strconv.ParseInt(f[4], 10, 64)
		key := f[1] + f[2] + f[3]
		if f[0] == "start" {
			open[key] = &run{kind: f[1], dir: f[2], pid: pid, start: ts, end: 1<<63 - 1}
			continue
		}
		if r := open[key]; r != nil {
			r.end = ts
			out = append(out, *r)
			delete(open, key)
		}
	}
	for _, r := range open {
		out = append(out, *r)
	}
	return out
}

// TestCrashMidReconcile kills roster with SIGKILL while a reconcile is inside
// its transaction, restarts it, and checks the roster converges with every
// event exactly once.
func TestCrashMidReconcile(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.Name, func(t *testing.T) {
			dataDir := t.TempDir()
			runLog := filepath.Join(t.TempDir(), "runs.log")
			args := []string{"--data-dir", dataDir}
			if db := m.Database(t); db != "" {
				args = append(args, "--database-url", db, "--redis-url", m.Redis(t))
			}
			ns := "crash" + testenv.RandomHex(4)
			cfg := filepath.Join(t.TempDir(), "roster.yaml")
			os.WriteFile(cfg, []byte("queue:\n  namespace: "+ns+"\n"), 0o600)
			args = append(args, "--config", cfg)
			env := []string{"ROSTER_RUN_LOG=" + runLog}

			a := startProc(t, append(env, "ROSTER_FAULT_RECONCILE_DELAY=1500ms"), args...)
			r := a.client(t)
			dir := r.NewSCIMTeam(1000)
			var ops []any
			var members []any
			var emails []string
			for i := 0; i < 30; i++ {
				email := fmt.Sprintf("user%02d@example.com", i)
				emails = append(emails, email)
				ops = append(ops, map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprintf("u%d", i),
					"data": map[string]any{"userName": email, "emails": []any{map[string]any{"value": email, "primary": true}}}})
				members = append(members, map[string]any{"value": fmt.Sprintf("bulkId:u%d", i)})
			}
			ops = append(ops, map[string]any{"method": "POST", "path": "/Groups", "bulkId": "g", "data": map[string]any{"displayName": "Everyone", "members": members}})
			resp := r.SCIM(dir, "POST", "/Bulk", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops})
			if resp.Status != 200 {
				t.Fatalf("bulk = %s", resp)
			}
			// Kill while a reconcile is running (started, not ended).
			Eventually(t, 20*time.Second, "a reconcile in flight", func() (bool, string) {
				for _, run := range readRunLog(t, runLog) {
					if run.kind == "reconcile" && run.end == 1<<63-1 && time.Since(time.Unix(0, run.start)) > 300*time.Millisecond {
						return true, ""
					}
				}
				return false, "no reconcile running"
			})
			a.kill(syscall.SIGKILL)

			b := startProc(t, env, args...)
			r = b.client(t)
			r.T = t
			Eventually(t, 60*time.Second, "roster converged after restart", func() (bool, string) {
				ms := r.Members(dir.TeamID)
				if len(ms) != 30 {
					return false, fmt.Sprintf("%d members", len(ms))
				}
				for _, m := range ms {
					if len(m["groups"].([]any)) != 1 {
						return false, fmt.Sprintf("%v in groups %v", m["email"], m["groups"])
					}
				}
				return true, ""
			})
			got := r.WaitRoster(dir.TeamID, emails...)
			for e, m := range got {
				if gs := m["groups"].([]any); len(gs) != 1 {
					t.Errorf("%s groups = %v", e, gs)
				}
			}
			time.Sleep(500 * time.Millisecond)
			evs := r.MustAdmin(200, "GET", "/teams/"+dir.TeamID+"/events?limit=1000", nil)["events"].([]any)
			count := map[string]int{}
			perMember := map[string]int{}
			for _, e := range evs {
				em := e.(map[string]any)
				count[em["type"].(string)]++
				if em["type"] == "member.added" {
					perMember[em["data"].(map[string]any)["member"].(map[string]any)["email"].(string)]++
				}
			}
			if count["member.added"] != 30 || count["group.created"] != 1 || count["member.removed"] != 0 {
				t.Fatalf("events after crash and restart = %v, want 30 member.added and 1 group.created", count)
			}
			for e, n := range perMember {
				if n != 1 {
					t.Errorf("%s added %d times", e, n)
				}
			}
		})
	}
}

// TestScaleOut runs one api, two workers and two schedulers against one
// PostgreSQL and Redis: changes converge, no directory is reconciled by two
// workers at once, and only the elected scheduler fires schedules.
func TestScaleOut(t *testing.T) {
	db := testenv.PostgresURL(t)
	redis := testenv.RedisURL(t)
	runLog := filepath.Join(t.TempDir(), "runs.log")
	cfg := filepath.Join(t.TempDir(), "roster.yaml")
	os.WriteFile(cfg, []byte("queue:\n  namespace: scale"+testenv.RandomHex(4)+"\nreconcile:\n  sweep_every: 1s\n"), 0o600)
	env := []string{"ROSTER_RUN_LOG=" + runLog}
	common := []string{"--database-url", db, "--redis-url", redis, "--config", cfg, "--data-dir", t.TempDir()}
	api := startProc(t, env, append(common, "--role", "api")...)
	w1 := startProc(t, env, append(common, "--role", "worker")...)
	w2 := startProc(t, env, append(common, "--role", "worker")...)
	s1 := startProc(t, env, append(common, "--role", "scheduler")...)
	s2 := startProc(t, env, append(common, "--role", "scheduler")...)
	r := api.client(t)

	// Several directories, each pushed to concurrently.
	const dirs, users = 4, 60
	var all []Directory
	for i := 0; i < dirs; i++ {
		all = append(all, r.NewSCIMTeam(1000))
	}
	var wg sync.WaitGroup
	for _, d := range all {
		d := d
		g := r.SCIM(d, "POST", "/Groups", map[string]any{"displayName": "Staff"}).JSON()["id"].(string)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < users; i += 4 {
					email := fmt.Sprintf("p%03d@example.com", i)
					resp := r.SCIM(d, "POST", "/Users", map[string]any{"userName": email})
					if resp.Status != 201 {
						t.Errorf("create = %s", resp)
						return
					}
					id := resp.JSON()["id"].(string)
					resp = r.SCIM(d, "PATCH", "/Groups/"+g, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
						"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}}}})
					if resp.Status != 204 && resp.Status != 200 {
						t.Errorf("patch = %s", resp)
					}
				}
			}(w)
		}
	}
	wg.Wait()
	for _, d := range all {
		d := d
		Eventually(t, 30*time.Second, "directory converged", func() (bool, string) {
			ms := r.Members(d.TeamID)
			if len(ms) != users {
				return false, fmt.Sprintf("%d members", len(ms))
			}
			for _, m := range ms {
				if len(m["groups"].([]any)) != 1 {
					return false, fmt.Sprintf("%v has groups %v", m["email"], m["groups"])
				}
			}
			return true, ""
		})
	}

	// A polled directory on a one-second schedule, against a small fake
	// Google Workspace: each poll succeeds quickly. (A failing source would
	// back off and fire less often than its schedule.)
	team := r.MustAdmin(201, "POST", "/teams", map[string]any{"name": "Polled", "plan": "enterprise"})
	tid := team["id"].(string)
	r.MustAdmin(200, "PUT", "/teams/"+tid+"/sso", map[string]any{"status": "active", "provider": "okta"})
	fake := googlefake.New(googlefake.Options{})
	ldapDir := r.MustAdmin(201, "POST", "/teams/"+tid+"/directories", map[string]any{"type": "google", "google": map[string]any{
		"service_account_json": fake.ServiceAccountJSON(), "admin_email": fake.Admin(),
		"api_url": fake.URL, "token_url": fake.TokenURL, "schedule": "@every 1s",
	}})["id"].(string)
	defer fake.Close()
	polls := func() int {
		n := 0
		for _, run := range readRunLog(t, runLog) {
			if run.kind == "poll" && run.dir == ldapDir {
				n++
			}
		}
		return n
	}
	time.Sleep(12 * time.Second) // the schedulers reload directories every 10 s
	before := polls()
	time.Sleep(6 * time.Second)
	fired := polls() - before
	if fired < 3 || fired > 8 {
		t.Errorf("a 1 s schedule fired %d polls in 6 s with two schedulers; want about 6 (one leader)", fired)
	}

	// No directory ever reconciled by two processes at once.
	runs := readRunLog(t, runLog)
	byDir := map[string][]run{}
	pids := map[int]bool{}
	for _, r := range runs {
		if r.kind == "reconcile" {
			byDir[r.dir] = append(byDir[r.dir], r)
			pids[r.pid] = true
		}
	}
	for d, rs := range byDir {
		sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
		for i := 1; i < len(rs); i++ {
			if rs[i].start < rs[i-1].end {
				t.Errorf("directory %s: reconciles overlap: pid %d [%d, %d] and pid %d [%d, %d]", d, rs[i-1].pid, rs[i-1].start, rs[i-1].end, rs[i].pid, rs[i].start, rs[i].end)
			}
		}
	}
	if len(pids) < 2 {
		t.Logf("reconciles ran in %d worker process(es)", len(pids))
	}
	for _, p := range []*proc{api, s1, s2} {
		for _, run := range runs {
			if run.pid == p.cmd.Process.Pid {
				t.Errorf("process with role api/scheduler (pid %d) ran a %s", run.pid, run.kind)
				break
			}
		}
	}
	_ = w1
	_ = w2

	// The standby scheduler takes over when the leader stops.
	leader, standby := s1, s2
	if !strings.Contains(metricsOf(t, s1), `roster_queue_leader{name="scheduler"} 1`) {
		leader, standby = s2, s1
	}
	if !strings.Contains(metricsOf(t, leader), `roster_queue_leader{name="scheduler"} 1`) || strings.Contains(metricsOf(t, standby), `roster_queue_leader{name="scheduler"} 1`) {
		t.Fatalf("want exactly one scheduler leading")
	}
	leader.kill(syscall.SIGTERM)
	Eventually(t, 30*time.Second, "standby scheduler leads", func() (bool, string) {
		return strings.Contains(metricsOf(t, standby), `roster_queue_leader{name="scheduler"} 1`), ""
	})
	n := polls()
	Eventually(t, 20*time.Second, "polls continue under the new leader", func() (bool, string) {
		return polls() >= n+2, fmt.Sprintf("%d polls", polls()-n)
	})
}

func metricsOf(t *testing.T, p *proc) string {
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}
