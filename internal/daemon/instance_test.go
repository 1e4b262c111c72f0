package daemon

import (
	"net/netip"
	"testing"

	"sitegm/hw/caps"
	"sitegm/internal/config"
)

// Issue 11 item 16: the capabilities kept are the configuration's needs.
func TestNeededCaps(t *testing.T) {
	base := config.Default()
	ptp := config.DefaultPTP()
	ptp.Interface = "eth0.10"
	ntp := config.DefaultNTP()
	ntp.Interface = "eth0.20"
	for _, c := range []struct {
		name string
		mut  func(*config.Config)
		want caps.Set
	}{
		{"demo: virtual clock, high ports", func(c *config.Config) {
			c.Clock.Discipline = "virtual"
			p, n := ptp, ntp
			p.EventPort, p.GeneralPort, n.Port = 3319, 3320, 1123
			c.PTP, c.NTP = []config.PTP{p}, []config.NTP{n}
		}, 0},
		{"system clock, NTP only", func(c *config.Config) {
			c.Clock.Discipline = "system"
			c.NTP = []config.NTP{ntp}
		}, caps.Of(caps.SysTime, caps.NetBindService)},
		{"PHC with hardware stamps", func(c *config.Config) {
			c.PTP, c.NTP = []config.PTP{ptp}, []config.NTP{ntp}
		}, caps.Of(caps.SysTime, caps.NetBindService, caps.NetAdmin)},
		{"PHC, software stamps, no system clock", func(c *config.Config) {
			p := ptp
			p.Timestamping = "software"
			c.Clock.SyncSystem = false
			c.PTP = []config.PTP{p}
		}, caps.Of(caps.NetBindService)},
		{"PTP over Ethernet", func(c *config.Config) {
			p := ptp
			p.Transport, p.Timestamping = "l2", "software"
			c.Clock.Discipline = "virtual"
			c.PTP = []config.PTP{p}
		}, caps.Of(caps.NetRaw)},
	} {
		cfg := base
		c.mut(&cfg)
		if got := neededCaps(cfg); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestOutsideUnitAllow(t *testing.T) {
	addrs := map[string][]netip.Prefix{
		"eth0.10": {netip.MustParsePrefix("192.168.10.1/24")},
		"eth0.20": {netip.MustParsePrefix("10.20.0.1/16"), netip.MustParsePrefix("198.51.100.7/24")},
	}
	got := outsideUnitAllow([]string{"eth0.10", "eth0.20"}, func(i string) []netip.Prefix { return addrs[i] })
	if len(got) != 1 || got[0] != "eth0.20 198.51.100.7/24" {
		t.Errorf("%v", got)
	}
}
