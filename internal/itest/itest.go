// Package itest holds what sitegm's integration tests share: building the
// binaries once, starting processes that are always cleaned up, waiting for
// log lines, and reading gnss-sim's truth.
package itest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Bin builds cmd/... once per test binary and returns the path of one
// command.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sitegm-itest-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...")
		cmd.Dir = Root()
		// As the Makefile builds them (static, capabilities changeable).
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// Proc is a process started by a test, with its output captured.
type Proc struct {
	Cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// Start runs a command; it is stopped (SIGTERM, then SIGKILL) when the test
// ends, whatever happens.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, exec.Command(name, args...))
}

// StartCmd starts a prepared command the same way.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	w := &lockedWriter{p: p}
	cmd.Stdout, cmd.Stderr = w, w
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(3 * time.Second)
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", filepath.Base(cmd.Path), tail(p.Output(), 60))
		}
	})
	return p
}

type lockedWriter struct{ p *Proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// Output is everything the process wrote so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Cmd.Process != nil {
		syscall.Kill(-p.Cmd.Process.Pid, sig)
	}
}

// Stop sends SIGTERM and waits up to grace, then kills. It returns whether
// the process exited by itself within grace.
func (p *Proc) Stop(grace time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		p.Signal(syscall.SIGKILL)
		<-p.done
		return false
	}
}

// Wait waits for the process to exit.
func (p *Proc) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// WaitFor polls until cond holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// WaitOutput waits until the process output contains s.
func (p *Proc) WaitOutput(t testing.TB, timeout time.Duration, s string) {
	t.Helper()
	WaitFor(t, timeout, fmt.Sprintf("%q in the output of %s", s, filepath.Base(p.Cmd.Path)), func() bool {
		return strings.Contains(p.Output(), s)
	})
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// Truth is one line of gnss-sim's --truth file.
type Truth struct {
	N             int      `json:"n"`
	Label         string   `json:"label"`
	EdgeHostNS    int64    `json:"edge_host_ns"`
	StampHostNS   int64    `json:"stamp_host_ns"`
	TrueMinusHost int64    `json:"true_minus_host_ns"`
	UTCMinusHost  int64    `json:"utc_minus_host_ns"`
	JumpNS        int64    `json:"jump_ns"`
	QErrPS        int32    `json:"qerr_ps"`
	PPS           bool     `json:"pps"`
	NMEA          bool     `json:"nmea"`
	Valid         bool     `json:"valid"`
	Faults        []string `json:"faults"`
}

// ReadTruth reads a truth file written so far.
func ReadTruth(t testing.TB, path string) []Truth {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Truth
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Truth
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// LogfmtLines returns the logfmt lines of out whose msg is msg, as maps.
func LogfmtLines(out, msg string) []map[string]string {
	var res []map[string]string
	for _, line := range strings.Split(out, "\n") {
		kv := ParseLogfmt(line)
		if kv["msg"] == msg {
			res = append(res, kv)
		}
	}
	return res
}

// ParseLogfmt splits one logfmt line (as slog's TextHandler writes it).
func ParseLogfmt(line string) map[string]string {
	m := map[string]string{}
	for len(line) > 0 {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			break
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			i := 1
			for i < len(line) && line[i] != '"' {
				if line[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(line) {
				break
			}
			val, _ = strconv.Unquote(line[:i+1])
			line = line[i+1:]
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				sp = len(line)
			}
			val, line = line[:sp], line[sp:]
		}
		m[key] = val
	}
	return m
}

// WriteFile writes a file in dir and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Discard is an io.Writer for commands whose output is not wanted.
var Discard io.Writer = io.Discard
