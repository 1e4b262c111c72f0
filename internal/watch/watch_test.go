package watch

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sitegm/hw/ntpnet"
	"sitegm/hw/ptpnet"
	"sitegm/internal/config"
	"sitegm/internal/followers"
	"sitegm/internal/status"
)

// TestComplete: the document gets the followers (identities, most recent
// first), a count for every served interface and kind (zeros too), the
// expected ones lost with their event, the monitored hosts; the history
// records the second's figures.
func TestComplete(t *testing.T) {
	cfg := config.Default()
	p := config.DefaultPTP()
	p.Interface, p.Expect = "eth0.10", []string{"001dc1.fffe.0a0b0c", "10.0.10.99"}
	n := config.DefaultNTP()
	n.Interface = "eth0.20"
	m := config.DefaultMonitor()
	m.Name, m.Host = "recorder", "10.0.20.10"
	cfg.PTP, cfg.NTP, cfg.Monitor = []config.PTP{p}, []config.NTP{n}, []config.Monitor{m}
	var log bytes.Buffer
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	w := New(cfg, t0, slog.New(slog.NewTextHandler(&log, nil)))
	k := followers.Key{Kind: followers.PTPv2, Iface: "eth0.10", ID: [10]byte{0, 0x1d, 0xc1, 0xff, 0xfe, 0x0a, 0x0b, 0x0c, 0, 1}}
	var s *status.Status
	for i := 0; i <= 15; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		w.Followers.Seen(k, netip.MustParseAddr("10.0.10.5"), now, 0, 0, false)
		s = &status.Status{Time: now, Clock: status.Clock{State: "LOCKED", ClockClass: 6, EstErrorNS: 300},
			PTP: []ptpnet.Status{{Interface: "eth0.10", V1: &ptpnet.V1Status{}}}, NTP: []ntpnet.Status{{Interface: "eth0.20"}},
			Rates: []status.PortRate{{Kind: "ntp", Interface: "eth0.20", PerSecond: 3}}}
		w.Complete(now, s)
		w.Record(now, s)
	}
	if len(s.Followers) != 1 || s.Followers[0].Identity != "001dc1.fffe.0a0b0c-1" || s.Followers[0].Requests != 16 || s.Followers[0].IntervalS != 1 {
		t.Errorf("followers %+v", s.Followers)
	}
	want := "eth0.10/ptp:1 eth0.10/ptpv1:0 eth0.20/ntp:0"
	var got []string
	for _, c := range s.FollowerCounts {
		got = append(got, c.Interface+"/"+c.Kind+":"+string(rune('0'+c.Active)))
	}
	if strings.Join(got, " ") != want {
		t.Errorf("counts %v, want %s", got, want)
	}
	if len(s.LostFollowers) != 1 || s.LostFollowers[0] != "eth0.10 10.0.10.99" {
		t.Errorf("lost %v", s.LostFollowers)
	}
	if !strings.Contains(log.String(), `msg="expected PTP follower never seen" event=ptp_follower_lost follower=10.0.10.99`) {
		t.Errorf("log:\n%s", log.String())
	}
	if len(s.Monitors) != 1 || s.Monitors[0].Name != "recorder" || s.Monitors[0].Polls != 0 {
		t.Errorf("monitors %+v", s.Monitors)
	}
	for _, name := range []string{"clock_state", "clock_offset", "clock_est_error", "requests/ntp/eth0.20", "followers/ptp/eth0.10"} {
		if _, pts := w.History.Points(name, t0.Add(15*time.Second), time.Hour); len(pts) == 0 {
			t.Errorf("no history of %s", name)
		}
	}
}
