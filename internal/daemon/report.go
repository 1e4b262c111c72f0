package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"sitegm/hw/caps"
	"sitegm/hw/gnss"
	"sitegm/hw/nic"
	"sitegm/hw/ntpnet"
	"sitegm/internal/status"
	"sitegm/internal/version"
)

// unknownNS is the estimate "unknown" (the largest duration).
const unknownNS = time.Duration(1<<63 - 1)

func clampNS(d time.Duration) int64 {
	if d == unknownNS {
		return -1
	}
	return d.Nanoseconds()
}

// snapshot builds the status document (on the daemon's loop).
func (d *Daemon) snapshot() *status.Status {
	g := d.gnss.Snapshot()
	fs := d.dec.FramerStats()
	st := d.disc.Status(d.nowOrLast().Clock())
	clk := d.tb.Clock()
	freq, _ := clk.Frequency()
	s := &status.Status{Version: version.BuildDate, Time: time.Now(), Uptime: time.Since(d.started).Seconds(), Ready: d.ready.Load()}
	s.GNSS = status.GNSS{State: string(g.State), Fix: fmt.Sprint(g.Fix), Satellites: g.Sats, LastTime: g.LastTime,
		LastReportAgeS: -1, PPSOK: d.ppsM.OK(),
		ChecksumErrors: fs.Rejects[gnss.RejectNMEAChecksum] + fs.Rejects[gnss.RejectUBXChecksum], ImplausibleDates: g.Implausible,
		Antenna: g.Antenna, Jamming: g.Jamming, JammingIndicator: g.JamInd, Spoofing: g.Spoofing, Survey: g.Survey,
		TimeAccuracyNS: g.TimeAccNS, Conflicts: g.Conflicts, Distrusted: d.disc.Quality().Distrusted()}
	if !g.LastReport.IsZero() {
		s.GNSS.LastReportAgeS = time.Since(g.LastReport).Seconds()
	}
	if d.cfg.GNSS.Device == "" {
		s.GNSS.State = "none"
	}
	s.Clock = status.Clock{Name: clk.Name(), State: string(st.State), ClockClass: int(st.ClockClass),
		Reference: string(st.Reference), Joining: d.disc.Quality().Joining(), ReferenceChanges: st.ReferenceChanges,
		OffsetNS: st.Estimate.Offset.Nanoseconds(), FrequencyPPB: status.Round3(freq), EstErrorNS: clampNS(st.EstError),
		MeasNoiseNS: st.Estimate.MeasNoise.Nanoseconds()}
	if off, bound, ok := d.slave.Offset(time.Now()); ok {
		s.Clock.System = &status.SystemClock{OffsetNS: off.Nanoseconds(), EstErrorNS: bound.Nanoseconds()}
	}
	if st.State == "HOLDOVER" {
		s.Clock.HoldoverElapsedS = st.HoldoverElapsed.Seconds()
		s.Clock.HoldoverRemainingS = st.HoldoverRemaining.Seconds()
	}
	if mh, ok := d.tb.MinusHost(time.Now()); ok {
		s.Clock.MinusHostNS = mh.Nanoseconds()
	}
	s.PTP = d.PTPStatuses()
	s.NTP = d.NTPStatuses()
	if d.upstreams.Len() > 0 {
		s.Upstreams = d.upstreams.Status(d.clockUTC())
		if sel := d.selection; sel.OK {
			s.Selection = &status.Selection{OffsetNS: int64(sel.Offset), RootDistNS: int64(sel.RootDist), Best: sel.Best,
				Stratum: sel.Stratum, Survivors: len(sel.Survivors), Disagree: d.disc.NTPDisagree()}
		}
	}
	return s
}

// logStatus writes the periodic status line.
func (d *Daemon) logStatus() {
	g := d.gnss.Snapshot()
	fs := d.dec.FramerStats()
	age := "never"
	if !g.LastReport.IsZero() {
		age = time.Since(g.LastReport).Round(100 * time.Millisecond).String()
	}
	st := d.disc.Status(d.nowOrLast().Clock())
	freq, _ := d.tb.Clock().Frequency()
	attrs := []any{"event", "status",
		"gnss_state", string(g.State), "gnss_fix", g.Fix, "gnss_sats", g.Sats, "gnss_time", g.LastTime,
		"gnss_last_report_age", age, "gnss_reports", g.Reports, "gnss_valid_reports", g.Valid,
		"gnss_sentences", fs.NMEA, "gnss_rejected_bytes", fs.Skipped,
		"gnss_checksum_errors", fs.Rejects[gnss.RejectNMEAChecksum] + fs.Rejects[gnss.RejectUBXChecksum],
		"pps_ok", d.ppsM.OK(), "pps_edges", st.Pairing.Edges,
		"gnss_antenna", g.Antenna, "gnss_jamming", g.Jamming, "gnss_jamming_indicator", g.JamInd, "gnss_spoofing", g.Spoofing,
		"gnss_time_accuracy_ns", g.TimeAccNS,
		"clock_state", string(st.State), "clock_class", st.ClockClass, "servo_state", st.ServoState.String(),
		"reference", string(st.Reference),
		"offset_ns", st.Estimate.Offset.Nanoseconds(), "est_error_ns", clampNS(st.EstError),
		"freq_ppb", status.Round3(freq), "meas_noise_ns", st.Estimate.MeasNoise.Nanoseconds(),
		"paired", st.Pairing.Paired, "nmea_latency", st.Latency.Round(time.Millisecond).String(),
	}
	for _, p := range d.PTPStatuses() {
		v := fmt.Sprintf("%s/%d/%s/dreq=%d", p.Profile, p.Domain, p.State, p.DelayReqs)
		if p.V1 != nil {
			v += fmt.Sprintf(" v1=%s/%s/dreq=%d", p.V1.Subdomain, p.V1.State, p.V1.DelayReqs)
		}
		attrs = append(attrs, "ptp_"+p.Interface, v)
	}
	for _, n := range d.NTPStatuses() {
		attrs = append(attrs, "ntp_"+n.Interface, fmt.Sprintf("%s/req=%d/kod=%d/xleave=%d", n.State, n.Requests, n.KoD, n.Interleaved))
	}
	if d.upstreams.Len() > 0 {
		for _, u := range d.upstreams.Status(d.clockUTC()) {
			attrs = append(attrs, "upstream_"+u.Name, fmt.Sprintf("%s/reach=%03o/offset=%v/delay=%v/dist=%v", u.State, u.Reach,
				time.Duration(u.OffsetNS), time.Duration(u.DelayNS), time.Duration(u.RootDistNS)))
		}
		if sel := d.selection; sel.OK {
			attrs = append(attrs, "upstreams_selection", fmt.Sprintf("offset=%v/dist=%v/survivors=%d/best=%s", sel.Offset, sel.RootDist,
				len(sel.Survivors), sel.Best))
		}
	}
	if mh, ok := d.tb.MinusHost(time.Now()); ok {
		attrs = append(attrs, "clock_minus_host_ns", mh.Nanoseconds())
	}
	if sv := g.Survey; sv != nil {
		attrs = append(attrs, "gnss_survey", fmt.Sprintf("active=%v valid=%v %s ±%.3fm", sv.Active, sv.Valid,
			(time.Duration(sv.DurationS)*time.Second).String(), sv.MeanAccM))
	}
	if st.State == "HOLDOVER" {
		attrs = append(attrs, "holdover_elapsed", st.HoldoverElapsed.Round(time.Second).String(),
			"holdover_remaining", st.HoldoverRemaining.Round(time.Second).String())
	}
	d.log.Info("status", attrs...)
}

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

// reportRejected logs, once a minute while it lasts, one WARNING that sums
// up what was turned away: a flood shows as one line, not one per packet.
func (d *Daemon) reportRejected(s *status.Status) {
	counts, total := d.rejected.Minute(status.Rejected(s))
	if total == 0 {
		return
	}
	d.log.Log(context.Background(), slog.LevelWarn, "input rejected or unanswerable in the last minute (docs/hostile-input.md)",
		"event", "input_rejected", "total", total, "counts", counts)
}

// reportRateLimited summarises, once a minute, the clients NTP rate
// limiting turned away: a site engineer sees a misbehaving camera (or a
// flood) without a line per packet.
func (d *Daemon) reportRateLimited(ns []ntpnet.Status) {
	var kod, dropped uint64
	for _, n := range ns {
		kod += n.KoD
		dropped += n.RateDropped
	}
	if kod < d.rateSeen[0] || dropped < d.rateSeen[1] {
		d.rateSeen = [2]uint64{} // a server restarted: counters began again
	}
	dk, dd := kod-d.rateSeen[0], dropped-d.rateSeen[1]
	d.rateSeen = [2]uint64{kod, dropped}
	if dk+dd > 0 {
		d.log.Warn("NTP clients rate limited in the last minute", "event", "ntp_rate_limited",
			"ntp_kod", dk, "ntp_rate_dropped", dd)
	}
}

// NarrowCapabilities drops every capability the configuration does not
// need; it is called once the daemon has started (New). What is kept is
// logged; a build that cannot change capabilities (cgo) says so.
func (d *Daemon) NarrowCapabilities() {
	want := d.cfg.Capabilities()
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

// checkUnitAllow warns, under systemd, about served addresses the unit's
// address filter drops.
func (d *Daemon) checkUnitAllow() {
	if os.Getenv("INVOCATION_ID") == "" {
		return
	}
	if bad := d.cfg.OutsideUnitAllow(nic.IPv4Prefixes); len(bad) > 0 {
		d.log.Warn("served addresses outside the unit's IPAddressAllow: their clients are dropped by systemd; add them with systemctl edit sitegm",
			"event", "address_not_allowed", "addresses", strings.Join(bad, ", "))
	}
}
