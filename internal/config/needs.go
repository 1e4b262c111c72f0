package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"

	"sitegm/hw/caps"
	"sitegm/ptp"
	v1 "sitegm/ptp/v1"
)

// Claims are what one running sitegm holds alone (hw/claim): its status
// socket, its receiver's serial device, and every port it serves on each
// interface. A second sitegm for the same configuration, or one that
// would serve a port of the first, fails to claim them and stops before
// it opens anything.
func (c Config) Claims() []string {
	status, gnss, ptps, ntps := c.Status, c.GNSS, c.PTP, c.NTP
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	var names []string
	if status.Socket != "" {
		names = append(names, "status"+abs(status.Socket))
	}
	if gnss.Device != "" && !strings.Contains(gnss.Device, "://") {
		names = append(names, "gnss"+abs(gnss.Device))
	}
	for _, p := range ptps {
		if p.Transport == "l2" {
			names = append(names, "l2/"+p.Interface)
			continue
		}
		names = append(names, fmt.Sprintf("udp/%s/%d", p.Interface, p.EventPort), fmt.Sprintf("udp/%s/%d", p.Interface, p.GeneralPort))
	}
	for _, n := range ntps {
		names = append(names, fmt.Sprintf("udp/%s/%d", n.Interface, n.Port))
	}
	return names
}

// Capabilities are the capabilities a configuration uses while it runs
// (hw/caps narrows the process to them once started): CAP_SYS_TIME to
// steer CLOCK_REALTIME (a PHC is steered through its device file, whose
// write permission is enough), CAP_NET_BIND_SERVICE for ports below 1024,
// CAP_NET_RAW for PTP over Ethernet, CAP_NET_ADMIN to switch on a NIC's
// hardware timestamps (SIOCSHWTSTAMP) where the PHC is the clock.
// SO_BINDTODEVICE needs none since Linux 5.7.
func (cfg Config) Capabilities() caps.Set {
	var s caps.Set
	phc := cfg.Clock.Discipline == "phc"
	if cfg.Clock.Discipline == "system" || phc && cfg.Clock.SyncSystem {
		s |= caps.Of(caps.SysTime)
	}
	for _, p := range cfg.PTP {
		if p.Transport == "l2" {
			s |= caps.Of(caps.NetRaw)
		} else if p.EventPort < 1024 || p.GeneralPort < 1024 {
			s |= caps.Of(caps.NetBindService)
		}
		if phc && p.Timestamping != "software" {
			s |= caps.Of(caps.NetAdmin)
		}
	}
	for _, n := range cfg.NTP {
		if n.Port < 1024 {
			s |= caps.Of(caps.NetBindService)
		}
		if phc {
			s |= caps.Of(caps.NetAdmin) // hardware receive stamps (hw/ntpnet chooseStamps)
		}
	}
	return s
}

// unitAllowed are the addresses the systemd unit's IPAddressAllow lets
// through (configs/sitegm.service): loopback, link-local, private, shared.
var unitAllowed = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
}

// OutsideUnitAllow lists the served interfaces' IPv4 addresses (addrsOf
// an interface) that the unit's IPAddressAllow does not cover: clients
// there would be dropped by systemd before sitegm sees them.
func (c Config) OutsideUnitAllow(addrsOf func(string) []netip.Prefix) []string {
	var ifaces, out []string
	for _, p := range c.PTP {
		ifaces = append(ifaces, p.Interface)
	}
	for _, n := range c.NTP {
		ifaces = append(ifaces, n.Interface)
	}
	allowed := func(a netip.Addr) bool {
		for _, p := range unitAllowed {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, iface := range ifaces {
		for _, p := range addrsOf(iface) {
			if !allowed(p.Addr()) {
				out = append(out, iface+" "+p.String())
			}
		}
	}
	// A monitored host and the HTTP endpoint's address are talked to as
	// well (a host name is resolved at each poll: not checked here).
	for _, m := range c.Monitor {
		if h, _, err := SplitHostPort(m.Host, 123); err == nil {
			if a, err := netip.ParseAddr(h); err == nil && !allowed(a) {
				out = append(out, "monitor "+m.Name+" "+a.String())
			}
		}
	}
	for _, u := range c.Upstream {
		if h, _, err := SplitHostPort(u.Server, 123); err == nil {
			if a, err := netip.ParseAddr(h); err == nil && !allowed(a) {
				out = append(out, "upstream "+a.String())
			}
		}
	}
	if ap, err := netip.ParseAddrPort(c.HTTP.Listen); err == nil && !ap.Addr().IsUnspecified() && !allowed(ap.Addr()) {
		out = append(out, "http "+ap.Addr().String())
	}
	return out
}

// RestartNeeded names the sections of next that a running sitegm started
// with c cannot take on a reload: [gnss], [clock] and [status] (the
// receiver, the disciplined clock and the status socket are opened once).
func (c Config) RestartNeeded(next Config) []string {
	var out []string
	for _, s := range []struct {
		name string
		same bool
	}{{"[gnss]", reflect.DeepEqual(next.GNSS, c.GNSS)}, {"[clock]", reflect.DeepEqual(next.Clock, c.Clock)},
		{"[status]", reflect.DeepEqual(next.Status, c.Status)}, {"[http]", reflect.DeepEqual(next.HTTP, c.HTTP)},
		{"[[monitor]]", reflect.DeepEqual(next.Monitor, c.Monitor)}, {"[[upstream]]", reflect.DeepEqual(next.Upstream, c.Upstream)},
		{"[nts]", reflect.DeepEqual(next.NTS, c.NTS)}} {
		if !s.same {
			out = append(out, s.name)
		}
	}
	return out
}

// Reload is what a reload of next does to a sitegm that runs c: the
// configuration that runs then (next's [log] and port tables on the
// running [gnss], [clock] and [status], which are opened once) and the
// changes that wait for a restart: those sections, and capabilities a
// new port needs that were dropped at start (kept is what the process
// still holds, narrowed whether it dropped any).
func (c Config) Reload(next Config, kept caps.Set, narrowed bool) (running Config, restart []string) {
	running = next
	running.Clock, running.GNSS, running.Status, running.NTS = c.Clock, c.GNSS, c.Status, c.NTS
	restart = c.RestartNeeded(next)
	if missing := running.Capabilities() &^ kept; narrowed && missing != 0 {
		// Dropped at start for good: the port that needs it waits.
		restart = append(restart, "capabilities ("+missing.String()+")")
	}
	return running, restart
}

// Served is the section as its port sees it: the expected followers are
// the watch's (internal/watch), so a changed list re-opens no port.
func (c PTP) Served() PTP { c.Expect = nil; return c }

// Served is the section as its server sees it (see PTP.Served).
func (c NTP) Served() NTP { c.Expect = nil; return c }

// Port is the PTPv2 port a [[ptp]] section describes (its identity comes
// from the interface, hw/ptpnet).
func (c PTP) Port() ptp.Config {
	return ptp.Config{Interface: c.Interface, Profile: c.Profile, Domain: uint8(c.Domain),
		Priority1: uint8(c.Priority1), Priority2: uint8(c.Priority2),
		LogAnnounce: int8(c.LogAnnounceInterval), LogSync: int8(c.LogSyncInterval),
		LogMinDelayReq: int8(c.LogMinDelayReqInterval), ReceiptTimeout: uint8(c.AnnounceReceiptTimeout),
		MasterOnly: c.MasterOnly, LockedFirst: c.LockedFirst, L2: c.Transport == TransportL2,
		GeneralPort: uint16(c.GeneralPort), AnnounceRange: ptp.Profiles[c.Profile].LogAnnounceRange}
}

// V1Port is the Dante PTPv1 port of the section, nil when it serves none.
func (c PTP) V1Port() *v1.Config {
	if !c.DanteV1 {
		return nil
	}
	return &v1.Config{Interface: c.Interface, Subdomain: c.V1Subdomain, LogSync: int8(c.V1LogSyncInterval), MasterOnly: c.MasterOnly}
}
