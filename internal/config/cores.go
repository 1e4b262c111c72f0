package config

import (
	"net/netip"
	"sitegm/clock"
	"sitegm/clock/discipline"
	"sitegm/clock/leap"
	"sitegm/hw/ntpnet"
	"sitegm/hw/pps"
	"sitegm/hw/ptpnet"
	"sitegm/ntp"
	"sitegm/ntp/upstream"
	"time"
)

// Discipline is what [gnss], [clock] and the [[upstream]] tables ask of
// the discipline of clk (whose oscillator is osc, and whose UTC the leap
// table tells); the drift file's frequency is the caller's to add.
func (c Config) Discipline(clk clock.Clock, osc clock.Oscillator, table *leap.Table) discipline.Config {
	g, k := c.GNSS, c.Clock
	return discipline.Config{
		Osc: osc, Timescale: clk.Timescale(), MaxFreq: clk.MaxFrequency(), Leap: table, Servo: string(k.Servo),
		NMEAOnly: g.PPS.Kind == PPSNone, NMEADelay: g.NMEADelay.Duration, LatencyLo: g.NMEALatency.Lo, LatencyHi: g.NMEALatency.Hi,
		PPSDelay: g.CableDelay.Duration + g.PPSOffset.Duration,
		Holdover: k.Holdover.Duration, HoldoverMaxError: k.HoldoverMaxError.Duration,
		JumpThreshold: k.JumpThreshold.Duration, FollowJumps: k.FollowJumps.Duration,
		NoGNSS: g.Device == "", Upstreams: len(c.Upstream) > 0,
		UpstreamMargin: k.UpstreamMargin.Duration, UpstreamMaxError: k.UpstreamMaxError.Duration,
	}
}

// Upstreams are the [[upstream]] tables as the NTP client's sources.
func (c Config) Upstreams() []upstream.Config {
	var ups []upstream.Config
	for _, u := range c.Upstream {
		ups = append(ups, upstream.Config{Name: u.Server, MinPoll: u.MinPoll, MaxPoll: u.MaxPoll, IBurst: u.IBurst, Prefer: u.Prefer})
	}
	return ups
}

// PPSSource is gnss.pps, gnss.pps_edge and gnss.pps_width as the pulse
// source's spec.
func (g GNSS) PPSSource() pps.Spec {
	return pps.Spec{Kind: string(g.PPS.Kind), Path: g.PPS.Path, Channel: g.PPS.Channel, Clear: g.PPSEdge == EdgeClear, Width: g.PPSWidth.Duration}
}

// SlaveCandidates are what may name a PHC to slave to the disciplined one
// (discipline = "phc"): clock.slave_phcs, then every [[ptp]] interface
// that may take hardware stamps and every [[ntp]] interface, whose own PHC is slaved when it is not
// clock.phc. The daemon resolves each to its device; an interface
// without a PHC is no candidate, an entry of slave_phcs without one an
// error.
func (c Config) SlaveCandidates() (listed, ports []string) {
	if c.Clock.Discipline != DisciplinePHC {
		return nil, nil
	}
	for _, p := range c.PTP {
		if p.Timestamping != TimestampingSoftware {
			ports = append(ports, p.Interface)
		}
	}
	for _, n := range c.NTP {
		ports = append(ports, n.Interface) // NTP takes hardware receive stamps where the NIC stamps every packet
	}
	return c.Clock.SlavePHCs, ports
}

// AnyNTS reports whether an [[ntp]] table serves NTS.
func (c Config) AnyNTS() bool {
	for _, n := range c.NTP {
		if n.NTS {
			return true
		}
	}
	return false
}

// Net is what the [[ptp]] section asks of its port (hw/ptpnet); seen
// learns each follower.
func (c PTP) Net(seen func(v1 bool, id [10]byte, from netip.Addr, at time.Time)) ptpnet.Config {
	return ptpnet.Config{Port: c.Port(), V1: c.V1Port(), Transport: string(c.Transport), EventPort: c.EventPort,
		DSCP:         ptpnet.DSCP{Event: c.DSCPEvent, General: c.DSCPGeneral, V1Event: c.DSCPV1Event},
		Timestamping: string(c.Timestamping), Seen: seen,
		IngressLatency: c.IngressLatency.Duration, EgressLatency: c.EgressLatency.Duration}
}

// NTPNet is what the [[ntp]] section n asks of its server (hw/ntpnet):
// with NTS on and the server keys open (keys), NTS on the NTP path and
// NTS-KE beside it; seen learns each client.
func (c Config) NTPNet(n NTP, keys *ntp.CookieKeys, seen func(netip.Addr, time.Time, int, int, bool)) ntpnet.Options {
	o := ntpnet.Options{Interface: n.Interface, Port: n.Port, RateInterval: n.RateInterval.Duration,
		RateBurst: n.RateBurst, SendBuffer: ptpnet.ReplySendBuffer, Seen: seen, Workers: n.Workers}
	if n.NTS && keys != nil {
		o.NTS, o.KE = keys, &ntpnet.KEOptions{Port: c.NTS.KEPort, CertFile: c.NTS.Certificate, KeyFile: c.NTS.Key, NTPPort: n.Port}
	}
	return o
}
