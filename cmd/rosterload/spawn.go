package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverProc is a roster started with -spawn (pid 0 when roster runs
// elsewhere: then nothing about its process is reported).
type serverProc struct {
	cmd     *exec.Cmd
	pid     int
	dataDir string
	logPath string
	done    chan error
}

type spawnOptions struct {
	binary      string
	databaseURL string
	redisURL    string
	rateLimit   float64 // <0: roster's default
	extra       []string
}

// spawn starts `roster serve` on a free loopback port with a temporary data
// folder and waits until it is ready. It returns the URL and admin token.
func spawn(ctx context.Context, o spawnOptions) (*serverProc, string, string, error) {
	dir, err := os.MkdirTemp("", "rosterload-")
	if err != nil {
		return nil, "", "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", "", err
	}
	addr := l.Addr().String()
	l.Close()
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	admin := "rosterload-" + hex.EncodeToString(tok)
	args := []string{"serve", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--admin-token", admin, "--public-url", "http://" + addr}
	if o.databaseURL != "" {
		args = append(args, "--database-url", o.databaseURL)
	}
	if o.redisURL != "" {
		args = append(args, "--redis-url", o.redisURL)
	}
	if o.rateLimit >= 0 {
		cfg := filepath.Join(dir, "roster.yaml")
		body := fmt.Sprintf("scim:\n  rate_limit: %s\n", strconv.FormatFloat(o.rateLimit, 'f', -1, 64))
		if o.rateLimit > 0 {
			body += fmt.Sprintf("  burst: %d\n", int(o.rateLimit*2))
		}
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			return nil, "", "", err
		}
		args = append(args, "--config", cfg)
	}
	args = append(args, o.extra...)
	logPath := filepath.Join(dir, "roster.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", "", err
	}
	cmd := exec.Command(o.binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", "", fmt.Errorf("start %s: %w", o.binary, err)
	}
	p := &serverProc{cmd: cmd, pid: cmd.Process.Pid, dataDir: dir, logPath: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	url := "http://" + addr
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			return nil, "", "", fmt.Errorf("roster exited before it was ready (%v); log: %s\n%s", err, logPath, tail(logPath, 2000))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/readyz", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop(false)
			return nil, "", "", fmt.Errorf("roster not ready after 90s; log: %s\n%s", logPath, tail(logPath, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, url, admin, nil
}

// stop ends the spawned roster with SIGTERM (SIGKILL after 30 s) and
// removes its data folder unless keep.
func (p *serverProc) stop(keep bool) {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if !keep {
		_ = os.RemoveAll(p.dataDir)
	}
}

// cpu is the user+system CPU time the process has used so far.
func (p *serverProc) cpu() time.Duration {
	if p == nil || p.pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	const hz = 100                           // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// rssMiB is the process's resident set size now.
func (p *serverProc) rssMiB() float64 {
	if p == nil || p.pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
