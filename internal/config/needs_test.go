package config

import (
	"net/netip"
	"testing"

	"sitegm/hw/caps"
)

// Issue 11 item 16: the capabilities kept are the configuration's needs.
func TestNeededCaps(t *testing.T) {
	base := Default()
	ptp := DefaultPTP()
	ptp.Interface = "eth0.10"
	ntp := DefaultNTP()
	ntp.Interface = "eth0.20"
	for _, c := range []struct {
		name string
		mut  func(*Config)
		want caps.Set
	}{
		{"demo: virtual clock, high ports", func(c *Config) {
			c.Clock.Discipline = "virtual"
			p, n := ptp, ntp
			p.EventPort, p.GeneralPort, n.Port = 3319, 3320, 1123
			c.PTP, c.NTP = []PTP{p}, []NTP{n}
		}, 0},
		{"system clock, NTP only", func(c *Config) {
			c.Clock.Discipline = "system"
			c.NTP = []NTP{ntp}
		}, caps.Of(caps.SysTime, caps.NetBindService)},
		{"PHC with hardware stamps", func(c *Config) {
			c.PTP, c.NTP = []PTP{ptp}, []NTP{ntp}
		}, caps.Of(caps.SysTime, caps.NetBindService, caps.NetAdmin)},
		{"PHC, software stamps, no system clock", func(c *Config) {
			p := ptp
			p.Timestamping = "software"
			c.Clock.SyncSystem = false
			c.PTP = []PTP{p}
		}, caps.Of(caps.NetBindService)},
		{"PTP over Ethernet", func(c *Config) {
			p := ptp
			p.Transport, p.Timestamping = "l2", "software"
			c.Clock.Discipline = "virtual"
			c.PTP = []PTP{p}
		}, caps.Of(caps.NetRaw)},
	} {
		cfg := base
		c.mut(&cfg)
		if got := cfg.Capabilities(); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOutsideUnitAllow(t *testing.T) {
	addrs := map[string][]netip.Prefix{
		"eth0.10": {netip.MustParsePrefix("192.168.10.1/24")},
		"eth0.20": {netip.MustParsePrefix("10.20.0.1/16"), netip.MustParsePrefix("198.51.100.7/24")},
	}
	c := Default()
	c.PTP, c.NTP = []PTP{{Interface: "eth0.10"}}, []NTP{{Interface: "eth0.20"}}
	got := c.OutsideUnitAllow(func(i string) []netip.Prefix { return addrs[i] })
	if len(got) != 1 || got[0] != "eth0.20 198.51.100.7/24" {
		t.Errorf("%v", got)
	}
	// A monitored host or a management address outside the private
	// ranges is named too; host names and loopback are not.
	c.Monitor = []Monitor{{Name: "rec", Host: "203.0.113.9:123"}, {Name: "nvr", Host: "nvr.site"}, {Name: "cam", Host: "10.0.20.30"}}
	c.HTTP.Listen = "198.51.100.7:8123"
	got = c.OutsideUnitAllow(func(i string) []netip.Prefix { return addrs[i] })
	if len(got) != 3 || got[1] != "monitor rec 203.0.113.9" || got[2] != "http 198.51.100.7" {
		t.Errorf("%v", got)
	}
}
