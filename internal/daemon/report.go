package daemon

import (
	"time"

	"sitegm/internal/status"
	"sitegm/internal/version"
)

// snapshot builds the status document (on the daemon's loop).
func (d *Daemon) snapshot() *status.Status {
	g := d.gnss.Snapshot()
	st := d.disc.Status(d.nowOrLast().Clock())
	clk := d.tb.Clock()
	freq, _ := clk.Frequency()
	s := &status.Status{Version: version.BuildDate, Time: time.Now(), Uptime: time.Since(d.started).Seconds(), Ready: d.ready.Load()}
	s.GNSS = status.GNSSOf(g, d.dec.FramerStats(), d.ppsM.OK(), st.Pairing.Edges, st.Pairing.Paired, st.Latency)
	s.GNSS.Distrusted = d.disc.Quality().Distrusted()
	s.GNSS.CableDelayNS, s.GNSS.PPSOffsetNS = d.cfg.GNSS.CableDelay.Nanoseconds(), d.cfg.GNSS.PPSOffset.Nanoseconds()
	s.GNSS.RecentEdges = status.EdgesOf(st.Recent)
	if d.src != nil {
		s.GNSS.PPSWidthNS = d.src.Stats().Width.Load()
		s.GNSS.PPSBeforeStep = d.src.Stats().BeforeStep.Load()
	}
	if d.cfg.GNSS.Device == "" {
		s.GNSS.State = "none"
	}
	s.Clock = status.ClockOf(clk.Name(), freq, st, d.disc.Quality().Joining(), d.tb.Slaves())
	if off, bound, ok := d.slave.Offset(time.Now()); ok {
		s.Clock.System = &status.SystemClock{OffsetNS: off.Nanoseconds(), EstErrorNS: bound.Nanoseconds()}
	}
	if mh, ok := d.tb.MinusHost(time.Now()); ok {
		s.Clock.MinusHostNS = mh.Nanoseconds()
	}
	s.PTP = d.PTPStatuses()
	s.NTP = d.NTPStatuses()
	utc := d.clockUTC()
	s.Leap = status.LeapOf(d.table, utc, d.disc.ReceiverLS(), d.disc.LeapKnown(utc))
	if d.upstreams.Len() > 0 {
		s.Upstreams = d.upstreams.Status(d.clockUTC())
		if sel := d.selection; sel.OK {
			s.Selection = &status.Selection{OffsetNS: int64(sel.Offset), RootDistNS: int64(sel.RootDist), Best: sel.Best,
				Stratum: sel.Stratum, Survivors: len(sel.Survivors), Disagree: d.disc.NTPDisagree()}
		}
	}
	return s
}

// logStatus writes the periodic status line (from the status document).
func (d *Daemon) logStatus() { d.log.Info("status", status.LineAttrs(d.snapshot())...) }

// notify tells systemd the state: READY=1 once every configured port is
// served (or after 10 s, with the waiting ones named in STATUS), STATUS=
// the one-line summary, WATCHDOG=1 from the main loop.
func (d *Daemon) notify(s *status.Status) {
	summary := status.Summary(s)
	if !d.ready.Load() && (d.allServing() || time.Since(d.started) > 10*time.Second) {
		d.ready.Store(true)
		s.Ready = true
		sdNotify("READY=1\nSTATUS=" + summary)
		d.log.Info("serving", "event", "ready", "summary", summary)
		return
	}
	sdNotify("STATUS=" + summary)
}

// logWarnings logs what the configuration file says that still works but
// should change.
func (d *Daemon) logWarnings(ws []string) {
	for _, w := range ws {
		d.log.Warn("configuration: "+w, "event", "config_warning")
	}
}
