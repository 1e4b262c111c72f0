package status

import (
	"fmt"
	"strings"
	"testing"

	"sitegm/hw/ntpnet"
	"sitegm/hw/ptpnet"
)

// line is the events of one minute as "name k=v ..." lines.
func line(m *Minute, s *Status) string {
	var b strings.Builder
	for _, e := range m.Events(s) {
		fmt.Fprintf(&b, "%s", e.Name)
		for i := 0; i+1 < len(e.Attrs); i += 2 {
			fmt.Fprintf(&b, " %v=%v", e.Attrs[i], e.Attrs[i+1])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The minute summary of rate limiting: one ntp_rate_limited event with
// the KoDs and drops since the last one, nothing in a quiet minute, and a
// server that restarted (its counters began again) is not reported as a
// huge negative or wrapped count.
func TestMinuteRateLimited(t *testing.T) {
	var m Minute
	s := &Status{NTP: []ntpnet.Status{{Interface: "eth1"}, {Interface: "eth2"}}}
	set := func(i int, kod, dropped uint64) { s.NTP[i].KoD, s.NTP[i].RateDropped = kod, dropped }
	set(0, 1, 30)
	set(1, 2, 5)
	if out := line(&m, s); !strings.Contains(out, "ntp_rate_limited ntp_kod=3 ntp_rate_dropped=35") {
		t.Errorf("first minute: %q", out)
	}
	if out := line(&m, s); out != "" {
		t.Errorf("a quiet minute: %q", out)
	}
	set(0, 2, 40)
	if out := line(&m, s); !strings.Contains(out, "ntp_kod=1 ntp_rate_dropped=10") {
		t.Errorf("second minute: %q", out)
	}
	// A reload re-opened the server: counters start from zero.
	set(0, 0, 4)
	set(1, 0, 0)
	if out := line(&m, s); !strings.Contains(out, "ntp_kod=0 ntp_rate_dropped=4") {
		t.Errorf("after a restart: %q", out)
	}
}

// The minute summary of hostile input: one input_rejected event with
// what grew, by port and reason; nothing in a quiet minute.
func TestMinuteRejected(t *testing.T) {
	var m Minute
	st := &Status{PTP: []ptpnet.Status{{Interface: "eth0.10", Drops: map[string]uint64{"own": 7, "management_rate": 40}, Unresolved: 300,
		V1: &ptpnet.V1Status{IntervalClamped: 2}}},
		NTP: []ntpnet.Status{{Interface: "eth0.20", Refused: 5, BadVersion: 1}}}
	out := line(&m, st)
	for _, want := range []string{"input_rejected", "total=348", "ptp/eth0.10/management_rate=40", "ptp/eth0.10/unresolved=300",
		"ptpv1/eth0.10/interval_clamped=2", "ntp/eth0.20/refused_destination=5", "ntp/eth0.20/bad_version=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("first minute lacks %s: %q", want, out)
		}
	}
	if strings.Contains(out, "own") {
		t.Errorf("our own looped-back messages counted as hostile: %q", out)
	}
	if out := line(&m, st); out != "" {
		t.Errorf("a quiet minute: %q", out)
	}
	st.NTP[0].Refused = 9
	if out := line(&m, st); !strings.Contains(out, "total=4") || !strings.Contains(out, "refused_destination=4") {
		t.Errorf("second minute: %q", out)
	}
}
