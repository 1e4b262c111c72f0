package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"sitegm/hw/ntpnet"
	"sitegm/hw/ptpnet"
	"sitegm/internal/logging"
	"sitegm/internal/status"
)

// The minute summary of rate limiting: one ntp_rate_limited line with the
// KoDs and drops since the last one, nothing in a quiet minute, and a
// server that restarted (its counters began again) is not reported as a
// huge negative or wrapped count.
func TestReportRateLimited(t *testing.T) {
	var buf bytes.Buffer
	d := &Daemon{log: slog.New(logging.TextHandler(&buf, slog.LevelDebug))}
	ns := []ntpnet.Status{{Interface: "eth1"}, {Interface: "eth2"}}
	set := func(i int, kod, dropped uint64) {
		ns[i].KoD, ns[i].RateDropped = kod, dropped
	}
	minute := func() string {
		buf.Reset()
		d.reportRateLimited(ns)
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

// The minute summary of hostile input: one input_rejected WARNING with
// what grew, by port and reason; nothing in a quiet minute.
func TestReportRejected(t *testing.T) {
	var buf bytes.Buffer
	d := &Daemon{log: slog.New(logging.TextHandler(&buf, slog.LevelDebug))}
	st := &status.Status{PTP: []ptpnet.Status{{Interface: "eth0.10", Drops: map[string]uint64{"own": 7, "management_rate": 40}, Unresolved: 300,
		V1: &ptpnet.V1Status{IntervalClamped: 2}}},
		NTP: []ntpnet.Status{{Interface: "eth0.20", Refused: 5, BadVersion: 1}}}
	minute := func() string {
		buf.Reset()
		d.reportRejected(st)
		return buf.String()
	}
	out := minute()
	for _, want := range []string{"event=input_rejected", "total=348", "ptp/eth0.10/management_rate=40", "ptp/eth0.10/unresolved=300",
		"ptpv1/eth0.10/interval_clamped=2", "ntp/eth0.20/refused_destination=5", "ntp/eth0.20/bad_version=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("first minute lacks %s: %q", want, out)
		}
	}
	if strings.Contains(out, "own") {
		t.Errorf("our own looped-back messages counted as hostile: %q", out)
	}
	if out := minute(); out != "" {
		t.Errorf("a quiet minute logged %q", out)
	}
	st.NTP[0].Refused = 9
	if out := minute(); !strings.Contains(out, "total=4") || !strings.Contains(out, "refused_destination=4") {
		t.Errorf("second minute: %q", out)
	}
}
