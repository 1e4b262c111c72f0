package itest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
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

// Journald makes sure a systemd-journald is running, starting one (root
// only) when none is; one started here is stopped when the test ends. It
// skips the test when neither is possible.
func Journald(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed (Debian package systemd; make test installs it as root)")
	}
	if journalUp() {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("no systemd-journald running and not root to start one")
	}
	var bin string
	for _, p := range []string{"/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
		}
	}
	if bin == "" {
		t.Skip("systemd-journald not installed")
	}
	p := Start(t, bin)
	WaitFor(t, 5*time.Second, "systemd-journald's socket", journalUp)
	t.Cleanup(func() { p.Stop(2 * time.Second) })
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
