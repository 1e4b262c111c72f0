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
	"sitegm/clock/sim"
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

// GroupEnv chooses which tests of the package run: "parallel" runs the
// tests that may share the machine (Parallel) and skips the quiet ones,
// "quiet" runs only the quiet ones (Quiet), one after another. make test
// runs the parallel group beside the kernel lab and the linters, then the
// quiet group on a machine that has nothing else to do. Unset, both run:
// the quiet ones first, alone, then the others together (Go runs the
// tests that never call t.Parallel before those that do).
const GroupEnv = "SITEGM_ITEST_GROUP"

// Parallel marks a test that may run beside the others: each builds its
// own namespaces and files and takes its loopback ports from FreePort.
func Parallel(t *testing.T) {
	t.Helper()
	if os.Getenv(GroupEnv) == "quiet" {
		t.Skip("not in the quiet group")
	}
	t.Parallel()
}

// Quiet marks a test whose figures (capacity) or bounds under attack
// (floods: the longest gap between Syncs) are the daemon's and must not
// be the other tests' load: it runs alone.
func Quiet(t *testing.T) {
	t.Helper()
	if os.Getenv(GroupEnv) == "parallel" {
		t.Skip("in the quiet group, which make test runs after the others, alone")
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

// WaitCount waits until count() reaches goal and returns the count: a
// test that judges samples collects them to a number, not in a fixed
// window, so that a slow machine takes longer instead of failing. The
// timeout is only a guard against a peer that never delivers.
func WaitCount(t testing.TB, timeout time.Duration, what string, goal int, count func() int) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	n := 0
	for {
		if n = count(); n >= goal {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %d %s: %d came", timeout, goal, what, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A Mark is a point in a process's output (a byte offset). Every wait
// starts from one: it sees only what the process wrote after that point,
// so that a state the process was in before (the first status line says
// FREERUN before any lock) can never satisfy a wait for it later. Mark 0
// is the process's start.
type Mark int

// Mark is the point just after everything written so far.
func (p *Proc) Mark() Mark {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Mark(p.out.Len())
}

// Since is what the process wrote after m.
func (p *Proc) Since(m Mark) string {
	out := p.Output()
	if int(m) > len(out) {
		return ""
	}
	return out[m:]
}

// lines calls f with each complete line written after from and the mark
// just past it, until f returns true.
func (p *Proc) lines(from Mark, f func(line string, next Mark) bool) bool {
	out := p.Since(from)
	off := int(from)
	for {
		nl := strings.IndexByte(out, '\n')
		if nl < 0 {
			return false // a partial last line is read once it is complete
		}
		if f(out[:nl], Mark(off+nl+1)) {
			return true
		}
		out, off = out[nl+1:], off+nl+1
	}
}

// WaitText waits for a line holding s written after from, for programs
// that are not sitegm (chronyd, ptp4l, tshark), and returns the mark just
// past that line.
func (p *Proc) WaitText(t testing.TB, from Mark, timeout time.Duration, s string) Mark {
	t.Helper()
	var at Mark
	WaitFor(t, timeout, fmt.Sprintf("%q in the output of %s after byte %d", s, filepath.Base(p.Cmd.Path), from), func() bool {
		return p.lines(from, func(l string, next Mark) bool {
			at = next
			return strings.Contains(l, s)
		})
	})
	return at
}

// Line is one logfmt line of sitegm's log, parsed.
type Line map[string]string

// Has says whether the line holds every key=value pair of kv.
func (l Line) Has(kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if v, ok := l[kv[i]]; !ok || v != kv[i+1] {
			return false
		}
	}
	return true
}

// Lines are the logfmt lines written after from that hold every
// key=value pair of kv.
func (p *Proc) Lines(from Mark, kv ...string) []Line {
	var res []Line
	p.lines(from, func(l string, _ Mark) bool {
		if kl := Line(ParseLogfmt(l)); kl.Has(kv...) {
			res = append(res, kl)
		}
		return false
	})
	return res
}

// WaitLine waits for the first logfmt line written after from that holds
// every key=value pair of kv, and returns it with the mark just past it
// (where a wait for what follows it starts).
func (p *Proc) WaitLine(t testing.TB, from Mark, timeout time.Duration, kv ...string) (Line, Mark) {
	t.Helper()
	var found Line
	var at Mark
	WaitFor(t, timeout, fmt.Sprintf("a line with %v from %s after byte %d", kv, filepath.Base(p.Cmd.Path), from), func() bool {
		return p.lines(from, func(l string, next Mark) bool {
			if kl := Line(ParseLogfmt(l)); kl.Has(kv...) {
				found, at = kl, next
				return true
			}
			return false
		})
	})
	return found, at
}

// WaitEvent waits for sitegm's event (event=name) with the attributes kv
// logged after from: events are logged once, when a state changes, which
// is what a test waits for.
func (p *Proc) WaitEvent(t testing.TB, from Mark, timeout time.Duration, name string, kv ...string) (Line, Mark) {
	t.Helper()
	return p.WaitLine(t, from, timeout, append([]string{"event", name}, kv...)...)
}

// WaitStatus waits for a status line (msg=status) logged after from that
// holds kv: a state sitegm is in now, not one it was in.
func (p *Proc) WaitStatus(t testing.TB, from Mark, timeout time.Duration, kv ...string) (Line, Mark) {
	t.Helper()
	return p.WaitLine(t, from, timeout, append([]string{"msg", "status"}, kv...)...)
}

// WaitSettled waits for n status lines in a row, logged after from, in
// which the servo's own offset estimate (offset_ns) is within bound: a
// clock LOCKED may still be pulling its phase in (the lock says its
// error is within a microsecond), and a figure of its steady state is
// measured from the mark returned, just past the n-th line.
func (p *Proc) WaitSettled(t testing.TB, from Mark, timeout time.Duration, n int, bound time.Duration) Mark {
	t.Helper()
	var at Mark
	WaitFor(t, timeout, fmt.Sprintf("%d status lines in a row with |offset_ns| <= %v after byte %d", n, bound, from), func() bool {
		run := 0
		return p.lines(from, func(l string, next Mark) bool {
			kl := Line(ParseLogfmt(l))
			if !kl.Has("msg", "status") {
				return false
			}
			off, err := strconv.ParseInt(kl["offset_ns"], 10, 64)
			if err != nil || time.Duration(off).Abs() > bound {
				run = 0
				return false
			}
			run++
			at = next
			return run >= n
		})
	})
	return at
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// Truth is one line of gnss-sim's --truth file.
type Truth = sim.Truth

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
