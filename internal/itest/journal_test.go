package itest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// sitegm under a journal logs natively: each event is an entry with its
// priority, SYSLOG_IDENTIFIER=sitegm and its attributes as upper-case
// fields that journalctl can match.
func TestJournaldStructuredFields(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	Journald(t)
	dir := t.TempDir()
	cfg := WriteFile(t, dir, "sitegm.toml", fmt.Sprintf(`
[gnss]
device = "%[1]s/gnss"
baud = 115200
pps = "none"
[clock]
discipline = "virtual"
[log]
target = "auto"
status_interval = "1s"
[status]
socket = "%[1]s/status.sock"
[http]
listen = ""
%[2]s`, dir, LoopbackNTP(t)))
	// stderr is a pipe, not a terminal, and the journal socket exists:
	// "auto" must choose the journal.
	sim := Start(t, Bin(t, "gnss-sim"), "--pty-link", filepath.Join(dir, "gnss"), "--baud", "115200")
	sim.WaitText(t, 0, 20*time.Second, "NMEA on")
	sitegm := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	pid := sitegm.Cmd.Process.Pid

	var entries []map[string]any
	// The last entry of a kind: the first status line may come before
	// the fix.
	find := func(field, value string) map[string]any {
		var found map[string]any
		for _, e := range entries {
			if fmt.Sprint(e[field]) == value {
				found = e
			}
		}
		return found
	}
	WaitFor(t, 30*time.Second, "a fix and a status line with it in the journal", func() bool {
		entries = JournalEntries(t, pid)
		st := find("EVENT", "status")
		return find("EVENT", "gnss_fix_gained") != nil && st != nil && st["GNSS_STATE"] == "fix"
	})
	sitegm.Stop(3 * time.Second)
	if sitegm.Output() != "" {
		t.Errorf("sitegm wrote to stderr although it logs to the journal:\n%s", sitegm.Output())
	}
	want := map[string]map[string]string{
		"start":           {"PRIORITY": "6", "SYSLOG_IDENTIFIER": "sitegm", "MESSAGE": "sitegm starting", "CLOCK_DISCIPLINE": "virtual"},
		"receiver_open":   {"PRIORITY": "5", "GNSS_STATE": "silent"},
		"gnss_fix_gained": {"PRIORITY": "5", "MESSAGE": "GNSS fix gained", "GNSS_FIX": "3d", "GNSS_SATS": "9", "GNSS_TALKER": "GN", "GNSS_STATE": "fix"},
		"status":          {"PRIORITY": "6", "GNSS_STATE": "fix", "GNSS_FIX": "3d"},
	}
	for ev, fields := range want {
		e := find("EVENT", ev)
		if e == nil {
			t.Errorf("no journal entry with EVENT=%s", ev)
			continue
		}
		for k, v := range fields {
			if fmt.Sprint(e[k]) != v {
				t.Errorf("EVENT=%s: %s=%v, want %s", ev, k, e[k], v)
			}
		}
	}
}
