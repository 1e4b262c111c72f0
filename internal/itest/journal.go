package itest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

const journalSocket = "/run/systemd/journal/socket"

func journalUp() bool {
	c, err := net.Dial("unixgram", journalSocket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

var (
	journalOnce sync.Once
	journalProc *exec.Cmd
	journalErr  string
)

// Journald makes sure a systemd-journald is running, starting one (root
// only) when none is, and skips the test when neither is possible. One
// started here serves every test of the binary (tests that run in
// parallel share it: a test that stopped it at its end would pull it away
// from the others) and is stopped by StopShared when they are all done.
func Journald(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed (Debian package systemd; make test installs it as root)")
	}
	journalOnce.Do(func() {
		if journalUp() {
			return
		}
		if os.Geteuid() != 0 {
			journalErr = "no systemd-journald running and not root to start one"
			return
		}
		var bin string
		for _, p := range []string{"/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
		if bin == "" {
			journalErr = "systemd-journald not installed"
			return
		}
		cmd := exec.Command(bin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			journalErr = fmt.Sprintf("start %s: %v", bin, err)
			return
		}
		journalProc = cmd
		for deadline := time.Now().Add(20 * time.Second); !journalUp(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				journalErr = "systemd-journald's socket did not appear"
				return
			}
		}
	})
	if journalErr != "" {
		t.Skip(journalErr)
	}
}

// StopShared stops what Journald started for the whole binary (TestMain
// calls it after the last test).
func StopShared() {
	if journalProc != nil {
		journalProc.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { journalProc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			journalProc.Process.Kill()
			<-done
		}
	}
}

// JournalEntries returns the journal entries of one process as field maps.
func JournalEntries(t testing.TB, pid int) []map[string]any {
	t.Helper()
	out, err := exec.Command("journalctl", "-o", "json", "--no-pager", "_PID="+itoa(pid)).Output()
	if err != nil {
		t.Fatalf("journalctl: %v", err)
	}
	var entries []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			entries = append(entries, m)
		}
	}
	return entries
}

func itoa(n int) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
