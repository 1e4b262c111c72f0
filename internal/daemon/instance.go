package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"sitegm/hw/caps"
	"sitegm/internal/config"
)

// claimNames are what one running sitegm holds alone (hw/claim): its
// status socket, its receiver's serial device, and every port it serves
// on each interface. A second sitegm for the same configuration, or one
// that would serve a port of the first, fails to claim them and stops
// before it opens anything.
func claimNames(status config.Status, gnss config.GNSS, ptps []config.PTP, ntps []config.NTP) []string {
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

// neededCaps are the capabilities a configuration uses while it runs
// (hw/caps narrows the process to them once started): CAP_SYS_TIME to
// steer CLOCK_REALTIME (a PHC is steered through its device file, whose
// write permission is enough), CAP_NET_BIND_SERVICE for ports below 1024,
// CAP_NET_RAW for PTP over Ethernet, CAP_NET_ADMIN to switch on a NIC's
// hardware timestamps (SIOCSHWTSTAMP) where the PHC is the clock.
// SO_BINDTODEVICE needs none since Linux 5.7.
func neededCaps(cfg config.Config) caps.Set {
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
			s |= caps.Of(caps.NetAdmin) // hardware receive stamps (ntp.go chooseStamps)
		}
	}
	return s
}

// NarrowCapabilities drops every capability the configuration does not
// need; it is called once the daemon has started (New). What is kept is
// logged; a build that cannot change capabilities (cgo) says so.
func (d *Daemon) NarrowCapabilities() {
	want := neededCaps(d.cfg)
	have, err := caps.Current()
	if err != nil || have == 0 {
		return // nothing to drop (an unprivileged run: make run, tests)
	}
	left, err := caps.Narrow(want)
	if err != nil {
		d.log.Warn("capabilities not narrowed; running with all the unit grants", "event", "capabilities",
			"error", err.Error(), "capabilities", have.String())
		return
	}
	d.caps, d.capsNarrowed = left, true
	d.log.Info("capabilities narrowed to what the configuration needs", "event", "capabilities",
		"capabilities", left.String(), "dropped", (have &^ left).String())
}

// unitAllowed are the addresses the systemd unit's IPAddressAllow lets
// through (configs/sitegm.service): loopback, link-local, private, shared.
var unitAllowed = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
}

// outsideUnitAllow lists the served interfaces' IPv4 addresses that the
// unit's IPAddressAllow does not cover: clients there would be dropped by
// systemd before sitegm sees them.
func outsideUnitAllow(ifaces []string, addrsOf func(string) []netip.Prefix) []string {
	var out []string
	for _, iface := range ifaces {
		for _, p := range addrsOf(iface) {
			ok := false
			for _, a := range unitAllowed {
				ok = ok || a.Contains(p.Addr())
			}
			if !ok {
				out = append(out, iface+" "+p.String())
			}
		}
	}
	return out
}

// checkUnitAllow warns, under systemd, about served addresses the unit's
// address filter drops.
func (d *Daemon) checkUnitAllow() {
	if os.Getenv("INVOCATION_ID") == "" {
		return
	}
	var ifaces []string
	for _, p := range d.cfg.PTP {
		ifaces = append(ifaces, p.Interface)
	}
	for _, n := range d.cfg.NTP {
		ifaces = append(ifaces, n.Interface)
	}
	if bad := outsideUnitAllow(ifaces, interfacePrefixes); len(bad) > 0 {
		d.log.Warn("served addresses outside the unit's IPAddressAllow: their clients are dropped by systemd; add them with systemctl edit sitegm",
			"event", "address_not_allowed", "addresses", strings.Join(bad, ", "))
	}
}

func interfacePrefixes(iface string) []netip.Prefix {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Addr().Is4() {
				out = append(out, p)
			}
		}
	}
	return out
}
