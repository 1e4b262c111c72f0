package config

import (
	"sitegm/clock"
	"sitegm/clock/discipline"
	"sitegm/clock/leap"
	"sitegm/hw/pps"
	"sitegm/ntp/upstream"
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
