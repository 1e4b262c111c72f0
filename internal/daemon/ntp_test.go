package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"sitegm/internal/config"
	"sitegm/internal/logging"
)

// The minute summary of rate limiting: one ntp_rate_limited line with the
// KoDs and drops since the last one, nothing in a quiet minute, and a
// server that restarted (its counters began again) is not reported as a
// huge negative or wrapped count.
func TestReportRateLimited(t *testing.T) {
	var buf bytes.Buffer
	d := &Daemon{log: slog.New(logging.TextHandler(&buf, slog.LevelDebug))}
	srv := &ntpServer{cfg: config.NTP{Interface: "eth1"}, stats: make([]workerStats, 2)}
	srv.serving.Store(true)
	slot := &ntpSlot{cfg: srv.cfg}
	slot.srv.Store(srv)
	d.ntps = []*ntpSlot{slot}
	set := func(worker int, kod, dropped uint64) {
		srv.stats[worker][4].Store(kod)
		srv.stats[worker][5].Store(dropped)
	}
	minute := func() string {
		buf.Reset()
		d.reportRateLimited()
		return buf.String()
	}

	set(0, 1, 30)
	set(1, 2, 5)
	if out := minute(); !strings.Contains(out, "event=ntp_rate_limited") || !strings.Contains(out, "ntp_kod=3") || !strings.Contains(out, "ntp_rate_dropped=35") {
		t.Errorf("first minute: %q", out)
	}
	if out := minute(); out != "" {
		t.Errorf("a quiet minute logged %q", out)
	}
	set(0, 2, 40)
	if out := minute(); !strings.Contains(out, "ntp_kod=1") || !strings.Contains(out, "ntp_rate_dropped=10") {
		t.Errorf("second minute: %q", out)
	}
	// A reload re-opened the server: counters start from zero.
	set(0, 0, 4)
	set(1, 0, 0)
	if out := minute(); !strings.Contains(out, "ntp_kod=0") || !strings.Contains(out, "ntp_rate_dropped=4") {
		t.Errorf("after a restart: %q", out)
	}
}
