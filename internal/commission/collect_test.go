package commission

import (
	"testing"
	"time"

	"sitegm/hw/ptpnet"
	"sitegm/internal/status"
)

// TestCollectorDaemon: status polls whose recent pulses overlap give each
// pulse of the run once (none from before it), the pulse count since the
// first look, the clock's states and the followers lost.
func TestCollectorDaemon(t *testing.T) {
	cfg := site(t)
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c := NewCollector(cfg, "box", "v", "f", t0, time.Minute)
	c.Interface(InterfaceObs{Name: "eth0.10", Roles: []string{"ptp"}, Exists: true}, 3)
	sec := t0.Unix() + 37
	for i := 0; i < 60; i++ {
		s := &status.Status{Summary: "ok"}
		s.GNSS = status.GNSS{State: "fix", Satellites: 10 + i%3, PPSEdges: uint64(100 + i), PPSWidthNS: 100e6}
		for k := 7; k >= 0; k-- {
			s.GNSS.RecentEdges = append(s.GNSS.RecentEdges, status.PPSEdge{Second: sec + int64(i-k), OffsetNS: int64(i - k)})
		}
		s.Clock.State = "ACQUIRING"
		if i >= 5 {
			s.Clock.State = "LOCKED"
		}
		s.PTP = append(s.PTP, ptpStatus("eth0.10", "MASTER"))
		if i >= 50 {
			s.LostFollowers = []string{"eth0.10 192.168.10.21"}
		}
		c.DaemonStatus(s, t0.Add(time.Duration(i)*time.Second))
	}
	c.Interface(InterfaceObs{Name: "eth0.10", Roles: []string{"ptp"}, Exists: true}, 5)
	o := c.Finish(time.Minute)
	if len(o.PPS.Edges) != 59 || o.PPS.Edges[0].Second != sec+1 || o.PPS.Edges[58].Second != sec+59 {
		t.Fatalf("%d edges, first %d", len(o.PPS.Edges), o.PPS.Edges[0].Second-sec)
	}
	if o.PPS.Counted != 59 || o.PPS.Seconds != 59 {
		t.Errorf("counted %d of %d", o.PPS.Counted, o.PPS.Seconds)
	}
	if o.Receiver.Seconds != 60 || o.Receiver.FixSeconds != 60 || o.Receiver.MinSats != 10 || o.Receiver.MaxSats != 12 {
		t.Errorf("receiver %+v", o.Receiver)
	}
	if got := o.Clock.States; len(got) != 2 || got[1] != "LOCKED" || o.Clock.LockedPolls != 55 {
		t.Errorf("clock %+v", o.Clock)
	}
	if o.Lost["eth0.10 192.168.10.21"] != 10 || len(o.LostLast) != 1 {
		t.Errorf("lost %v %v", o.Lost, o.LostLast)
	}
	ifc := o.Interfaces[0]
	if ifc.PortState != "MASTER" || ifc.CarrierChanges != 2 {
		t.Errorf("interface %+v", ifc)
	}
	r := Analyze(cfg, o)
	if c := byID(r)["clock.state"]; c.Verdict != Warn {
		t.Errorf("locked after 5 s: %+v", c)
	}
	if c := byID(r)["follower.eth0.10.192.168.10.21"]; c.Verdict != Fail {
		t.Errorf("lost follower: %+v", c)
	}
}

func ptpStatus(iface, state string) ptpnet.Status {
	return ptpnet.Status{Interface: iface, State: state, Timestamping: "hardware"}
}
