package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/hw/caps"
)

// A reload runs the new ports on the running receiver, clock and status
// socket, names what waits for a restart, and a port that needs a
// capability dropped at start waits too; an Expect list is not part of
// what a port serves.
func TestReload(t *testing.T) {
	run := Default()
	run.Clock.Discipline = "virtual"
	n := DefaultNTP()
	n.Interface, n.Port = "eth1", 1123
	run.NTP = []NTP{n}
	next := run
	next.Clock.Holdover.Duration = 2 * time.Hour
	next.GNSS.Baud = run.GNSS.Baud * 2
	p := DefaultPTP()
	p.Interface, p.Transport, p.Timestamping = "eth0", TransportL2, "software"
	next.PTP = []PTP{p}
	running, restart := run.Reload(next, 0, true)
	if !reflect.DeepEqual(running.Clock, run.Clock) || running.GNSS.Baud != run.GNSS.Baud || len(running.PTP) != 1 {
		t.Errorf("running: clock %+v gnss baud %d, %d PTP", running.Clock, running.GNSS.Baud, len(running.PTP))
	}
	if got := strings.Join(restart, " "); got != "[gnss] [clock] capabilities (CAP_NET_RAW)" {
		t.Errorf("restart: %q", got)
	}
	if _, restart := run.Reload(next, caps.Of(caps.NetRaw), true); strings.Contains(strings.Join(restart, " "), "capabilities") {
		t.Errorf("a capability still held named as missing: %v", restart)
	}
	if _, restart := run.Reload(next, 0, false); strings.Contains(strings.Join(restart, " "), "capabilities") {
		t.Errorf("nothing was dropped, yet a capability is missing: %v", restart)
	}
	p.Expect = []string{"0011aa.fffe.bbccdd"}
	if q := p.Served(); q.Expect != nil || q.Interface != "eth0" {
		t.Errorf("served: %+v", q)
	}
}

// The discipline's configuration follows [gnss] and [clock]; without a
// pulse it is NMEA only, without a device the upstreams lead.
func TestDisciplineConfig(t *testing.T) {
	c := Default()
	c.GNSS.PPS = PPSSpec{Kind: PPSNone}
	c.Upstream = []Upstream{DefaultUpstream()}
	c.Upstream[0].Server = "10.0.0.1"
	d := c.Discipline(clock.NewVirtual(0), clock.TCXO, leap.Builtin())
	if !d.NMEAOnly || d.Timescale != clock.TAI || d.Holdover != c.Clock.Holdover.Duration || d.NoGNSS || !d.Upstreams || d.MeasNoise != 0 {
		t.Errorf("%+v", d)
	}
	if ups := c.Upstreams(); len(ups) != 1 || ups[0].Name != "10.0.0.1" || ups[0].MinPoll != c.Upstream[0].MinPoll {
		t.Errorf("upstreams %+v", ups)
	}
	c.GNSS.Device = ""
	if d := c.Discipline(clock.NewVirtual(0), clock.TCXO, leap.Builtin()); !d.NoGNSS {
		t.Error("no device, yet GNSS leads")
	}
}

// Slave PHCs are named only for a disciplined PHC: the listed ones and
// every [[ptp]] interface that may take hardware stamps.
func TestSlaveCandidates(t *testing.T) {
	c := Default()
	c.Clock.SlavePHCs = []string{"eth2"}
	c.PTP = []PTP{{Interface: "eth1", Timestamping: TimestampingAuto}, {Interface: "eth3", Timestamping: TimestampingSoftware}}
	c.NTP = []NTP{{Interface: "eth4"}}
	listed, ports := c.SlaveCandidates()
	if len(listed) != 1 || listed[0] != "eth2" || len(ports) != 2 || ports[0] != "eth1" || ports[1] != "eth4" {
		t.Fatalf("listed %v ports %v", listed, ports)
	}
	c.Clock.Discipline = DisciplineVirtual
	if l, p := c.SlaveCandidates(); l != nil || p != nil {
		t.Fatalf("virtual clock: %v %v", l, p)
	}
}

// DSCP marks: the profile's and Dante's when left out; the older dscp key
// sets the three a file leaves out; a key set wins.
func TestDSCPByProfile(t *testing.T) {
	for _, c := range []struct {
		keys                 string
		event, general, v1ev int
	}{
		{"", 46, 46, 56},
		{"dscp = 34\n", 34, 34, 34},
		{"dscp = 34\ndscp_v1_event = 48\n", 34, 34, 48},
		{"dscp_event = 56\n", 56, 46, 56},
	} {
		cfg, err := Parse("t.toml", []byte("[clock]\ndiscipline = \"virtual\"\n[[ptp]]\ninterface = \"lo\"\n"+c.keys))
		if err != nil {
			t.Fatal(err)
		}
		p := cfg.PTP[0]
		if p.DSCPEvent != c.event || p.DSCPGeneral != c.general || p.DSCPV1Event != c.v1ev {
			t.Errorf("%q: event %d general %d v1 %d", c.keys, p.DSCPEvent, p.DSCPGeneral, p.DSCPV1Event)
		}
	}
	if _, err := Parse("t.toml", []byte("[clock]\ndiscipline = \"virtual\"\nslave_phcs = [\"eth1\"]\n")); err == nil {
		t.Error("slave_phcs accepted without a disciplined PHC")
	}
}

// ntp.workers reaches the server (0: one per CPU, the server's choice);
// past 64 it is refused with its key.
func TestNTPWorkers(t *testing.T) {
	cfg, err := Parse("t.toml", []byte("[[ntp]]\ninterface = \"lo\"\nworkers = 1\n[[ntp]]\ninterface = \"eth0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.NTPNet(cfg.NTP[0], nil, nil).Workers; w != 1 {
		t.Errorf("workers = 1 gave %d", w)
	}
	if w := cfg.NTPNet(cfg.NTP[1], nil, nil).Workers; w != 0 {
		t.Errorf("the default gave %d", w)
	}
	if _, err := Parse("t.toml", []byte("[[ntp]]\ninterface = \"lo\"\nworkers = 65\n")); err == nil || !strings.Contains(err.Error(), "ntp[0].workers") {
		t.Errorf("workers = 65: %v", err)
	}
}
