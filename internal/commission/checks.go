package commission

import (
	"fmt"
	"math"
	"strings"
	"time"

	"sitegm/internal/config"
)

// The bounds the checks apply, each with its reason.
const (
	// A timing receiver's pulse stamped on a NIC pin scatters by 5-20 ns,
	// a GPIO's kernel PPS by one or a few microseconds, a serial port's
	// DCD by tens: below 100 ns is a hardware-timestamped pulse working as
	// it should; beyond 10 us something adds latency the servo cannot
	// average away (a USB serial adapter's DCD, an overloaded CPU).
	jitterGood = 100.0
	jitterBad  = 10000.0
	// Missing pulses: none is right; a receiver set to pulse only while
	// it has time (gnss configure's default) skips them when it loses
	// the sky, which more than 1% of the run should not be.
	missingBad = 0.01
	// The clock from the pulse (daemon): the servo holds a locked clock
	// within tens of nanoseconds of a hardware-stamped pulse.
	offsetGood = 100.0
	offsetBad  = 1000.0
	// PHC reads: an i210's PTP_SYS_OFFSET_EXTENDED bracket is 1-3 us;
	// beyond 10 us the bus or the CPU stalls the read, beyond 100 us the
	// system clock's comparison to the PHC becomes a share of NTP's
	// milliseconds.
	windowGood = 10000.0
	windowBad  = 100000.0
	// The system clock slaved to the PHC (sync_system) within 10 us
	// serves NTP with nothing to spare lost; beyond 1 ms it is NTP's
	// whole need.
	systemGood = 10000.0
	systemBad  = 1e6
	// Leap table: IERS announces leap seconds six months ahead (Bulletin
	// C) and tzdata's leap-seconds.list expires about then; a month's
	// notice leaves time to update the box.
	leapNotice = 30 * 24 * time.Hour
	// The receiver's own time accuracy estimate: a timing receiver in
	// fixed-position mode says 2-20 ns.
	taccGood = 100
)

type judge struct {
	cfg    *config.Config
	obs    *Observations
	r      *Report
	checks []Check
}

func (j *judge) add(c Check) {
	if c.Verdict == Pass {
		c.Action = ""
	}
	j.checks = append(j.checks, c)
}

func ns(v float64) string { return time.Duration(math.Round(v)).String() }

func (j *judge) all() {
	j.run()
	if j.cfg.GNSS.Device != "" {
		j.receiver()
		j.pulse()
	}
	j.clock()
	j.phc()
	j.interfaces()
	j.delays()
	j.followers()
	j.monitors()
	j.leap()
}

func (j *judge) run() {
	o := j.obs
	c := Check{ID: "run.duration", Title: "Run length", Verdict: Pass,
		Figure: fmt.Sprintf("%s of %s", o.Elapsed.Round(time.Second), o.Planned.Round(time.Second)), Reason: "ran the whole time asked"}
	if o.Elapsed < o.Planned*95/100 {
		c.Verdict, c.Reason, c.Action = Warn, "the run was cut short: fewer samples than planned", "run again for the full time"
	}
	j.add(c)
	c = Check{ID: "run.daemon", Title: "sitegm running", Verdict: Pass, Figure: "running: " + o.DaemonState,
		Reason: "the daemon's own figures are judged: pulse pairing, clock, ports, followers"}
	if !o.Daemon {
		c.Verdict, c.Figure = Warn, "not running (standalone)"
		c.Reason = "the receiver and the pulse were read directly; the clock, the ports and the followers could not be judged"
		c.Action = "start sitegm (systemctl start sitegm) and run the commissioning again for the full report"
	}
	j.add(c)
	if len(o.Problems) > 0 {
		j.add(Check{ID: "run.problems", Title: "Collection", Verdict: Warn, Figure: fmt.Sprintf("%d problem(s)", len(o.Problems)),
			Reason: strings.Join(o.Problems, "; "), Action: "see the problems listed; the figures they concern are missing"})
	}
}

func (j *judge) receiver() {
	rc := j.obs.Receiver
	c := Check{ID: "receiver.identity", Title: "Receiver identity", Verdict: Pass}
	if rc.Module != "" || rc.Firmware != "" {
		c.Figure = fmt.Sprintf("%s, firmware %s, hardware %s, protocol %s", orUnknown(rc.Module), orUnknown(rc.Firmware), orUnknown(rc.Hardware), orUnknown(rc.Protocol))
		c.Reason = "the receiver answered UBX-MON-VER"
	} else {
		c.Verdict, c.Figure = Warn, "unknown"
		c.Reason = "the receiver did not say what it is (not a u-blox, UBX input off, or a TCP feed sitegm does not write to)"
		c.Action = "write the receiver's model and firmware into the site record by hand"
	}
	j.add(c)

	c = Check{ID: "receiver.fix", Title: "GNSS fix", Figure: fmt.Sprintf("%d of %d s with a fix, %d-%d satellites", rc.FixSeconds, rc.Seconds, rc.MinSats, rc.MaxSats)}
	switch {
	case rc.Seconds == 0:
		c.Verdict, c.Figure, c.Reason = Fail, "no report from "+j.cfg.GNSS.Device, "nothing was decoded from the receiver"
		c.Action = "check gnss.device and gnss.baud, the cable, and that nothing else holds the port (sitegm gnss decode shows what arrives)"
	case rc.FixSeconds == rc.Seconds:
		c.Verdict, c.Reason = Pass, "a fix the whole run"
	case float64(rc.FixSeconds) >= 0.95*float64(rc.Seconds):
		c.Verdict, c.Reason, c.Action = Warn, "the fix came and went", "check the antenna's sky view and its cable"
	default:
		c.Verdict, c.Reason, c.Action = Fail, "no fix for more than 5% of the run", "check the antenna's sky view, its cable and the antenna state below"
	}
	j.add(c)

	c = Check{ID: "receiver.antenna", Title: "Antenna", Figure: rc.Antenna}
	switch rc.Antenna {
	case "ok":
		c.Verdict, c.Reason = Pass, "the receiver's antenna supervisor says ok"
	case "open", "short":
		c.Verdict, c.Reason = Fail, "the receiver reports the antenna "+rc.Antenna
		c.Action = "check the antenna cable and its connectors; an active antenna needs the receiver's bias voltage"
	default:
		c.Verdict, c.Figure, c.Reason = Warn, "unknown", "the receiver reports no antenna state (UBX MON-HW / MON-RF)"
		c.Action = "on a u-blox: sitegm gnss configure enables the health messages; otherwise inspect the antenna by eye"
	}
	j.add(c)

	switch rc.Jamming {
	case "warning", "critical":
		v := Warn
		if rc.Jamming == "critical" {
			v = Fail
		}
		j.add(Check{ID: "receiver.jamming", Title: "Interference", Verdict: v, Figure: rc.Jamming,
			Reason: "the receiver reports interference", Action: "move the antenna away from transmitters and switching supplies"})
	case "ok":
		j.add(Check{ID: "receiver.jamming", Title: "Interference", Verdict: Pass, Figure: "ok", Reason: "none reported"})
	}
	if rc.Spoofing == "indicated" || rc.Spoofing == "affirmed" {
		j.add(Check{ID: "receiver.spoofing", Title: "Spoofing", Verdict: Fail, Figure: rc.Spoofing,
			Reason: "the receiver reports spoofing: sitegm holds over rather than follow it", Action: "find the source before the site goes live"})
	}

	timing := strings.HasSuffix(strings.ToUpper(rc.Module), "T")
	c = Check{ID: "receiver.survey", Title: "Survey-in"}
	switch sv := rc.Survey; {
	case sv != nil && sv.Valid && !sv.Active:
		c.Verdict, c.Figure = Pass, fmt.Sprintf("done: %s, position within %.2f m, %d observations", time.Duration(sv.DurationS*1e9).Round(time.Second), sv.MeanAccM, sv.Observations)
		c.Reason = "the receiver holds a surveyed position: the best time it can give"
	case sv != nil && sv.Active:
		c.Verdict, c.Figure = Warn, fmt.Sprintf("in progress: %s, %.2f m so far", time.Duration(sv.DurationS*1e9).Round(time.Second), sv.MeanAccM)
		c.Reason, c.Action = "the position is not fixed yet: the pulse is less accurate until it is", "run the commissioning again once the survey-in is done"
	case timing:
		c.Verdict, c.Figure = Warn, "not reported"
		c.Reason = "a timing receiver that does not report a survey-in navigates instead of holding its position"
		c.Action = "sitegm gnss configure --timing survey (or --timing fixed --position ...)"
	default:
		c.Title = ""
	}
	if c.Title != "" {
		j.add(c)
	}
	if rc.TimeAccNS > 0 {
		c = Check{ID: "receiver.accuracy", Title: "Receiver's time accuracy", Verdict: Pass, Figure: time.Duration(rc.TimeAccNS).String(),
			Reason: "the receiver's own estimate of its time"}
		if rc.TimeAccNS > taccGood {
			c.Verdict, c.Reason, c.Action = Warn, "the receiver's own estimate is beyond 100 ns", "check the sky view and the survey-in"
		}
		j.add(c)
	}
}

func (j *judge) pulse() {
	p := j.r.PPS
	if j.cfg.GNSS.PPS.Kind == "none" {
		j.add(Check{ID: "pps.edges", Title: "PPS", Verdict: Warn, Figure: "none configured",
			Reason: "time comes from the NMEA sentences alone: milliseconds, not microseconds", Action: "wire the receiver's pulse (docs/hardware.md)"})
		return
	}
	c := Check{ID: "pps.edges", Title: "Pulses", Figure: fmt.Sprintf("%d of %d expected, %d missing", p.Counted, p.Expected, p.Missing)}
	switch {
	case p.Counted == 0:
		c.Verdict, c.Reason = Fail, "no pulse arrived from "+p.Source
		c.Action = "check the pulse's wiring and gnss.pps; a receiver set to pulse only while it has time gives none without a fix"
	case p.Missing == 0:
		c.Verdict, c.Reason = Pass, "one pulse every second"
	case float64(p.Missing) <= missingBad*float64(p.Expected):
		c.Verdict, c.Reason, c.Action = Warn, "a few pulses were missing", "check the fix (a receiver skips pulses without time) and the wiring"
	default:
		c.Verdict, c.Reason, c.Action = Fail, "more than 1% of the pulses were missing", "check the fix, the wiring and the pulse's level at the pin"
	}
	j.add(c)
	if p.Dropped > uint64(p.Expected)+uint64(p.Expected)/10 {
		j.add(Check{ID: "pps.glitches", Title: "Pulse glitches", Verdict: Warn, Figure: fmt.Sprintf("%d edges dropped", p.Dropped),
			Reason: "more edges arrived than a pulse has: noise on the line, or gnss.pps_width does not match the pulse",
			Action: "check the pulse's wiring (ground, termination) and gnss.pps_width"})
	}
	if len(p.Edges) >= 10 {
		what := "its phase on " + p.Clock + " about a straight line (the pulse's jitter with the clock's drift taken out)"
		if p.Disciplined {
			what = "the disciplined clock's offset from each pulse, about a straight line"
		}
		s := p.Residual
		c = Check{ID: "pps.jitter", Title: "Pulse jitter", Figure: fmt.Sprintf("sigma %s, 99%% within %s, worst %s over %d pulses",
			ns(s.Sigma), ns(s.AbsP99), ns(math.Max(-s.Min, s.Max)), s.N), Reason: what}
		switch {
		case s.Sigma <= jitterGood:
			c.Verdict = Pass
		case s.Sigma <= jitterBad:
			c.Verdict, c.Action = Warn, "fine for NTP, coarse for AES67: stamp the pulse on the NIC's pin (gnss.pps = \"phc:IFACE:0\")"
		default:
			c.Verdict, c.Action = Fail, "find what delays the pulse's timestamp (a USB serial adapter, CPU load, power saving)"
		}
		j.add(c)
	} else if p.Counted > 0 {
		j.add(Check{ID: "pps.jitter", Title: "Pulse jitter", Verdict: Warn, Figure: fmt.Sprintf("%d pulses measured", len(p.Edges)),
			Reason: "too few pulses to judge the jitter", Action: "run longer, with the receiver's time valid"})
	}
	if o := p.Offset; o != nil && o.N >= 10 {
		c = Check{ID: "pps.offset", Title: "Clock from the pulse", Figure: fmt.Sprintf("mean %s, sigma %s", ns(o.Mean), ns(o.Sigma)),
			Reason: "the disciplined clock against each pulse, after the known delays"}
		bound := math.Abs(o.Mean) + o.Sigma
		switch {
		case bound <= offsetGood:
			c.Verdict = Pass
		case bound <= offsetBad:
			c.Verdict, c.Action = Warn, "let the servo settle (a fresh start learns the frequency) and run again"
		default:
			c.Verdict, c.Action = Fail, "the clock does not follow the pulse: see journalctl -u sitegm"
		}
		j.add(c)
	}
	if w := p.Width; w != nil {
		want := j.cfg.GNSS.PPSWidth.Duration
		c = Check{ID: "pps.width", Title: "Pulse width", Figure: fmt.Sprintf("%s (configured %s)", ns(w.Mean), want)}
		if want <= 0 || math.Abs(w.Mean-float64(want)) <= math.Max(float64(time.Millisecond), 0.1*float64(want)) {
			c.Verdict, c.Reason = Pass, "the pulse is as wide as gnss.pps_width says"
		} else {
			c.Verdict, c.Reason = Fail, "gnss.pps_width does not match the pulse: a NIC pin stamps both edges, and the width tells them apart"
			c.Action = fmt.Sprintf("set gnss.pps_width = \"%s\" (or the receiver's pulse length: sitegm gnss configure --pulse-length)", time.Duration(w.Mean).Round(time.Millisecond))
		}
		j.add(c)
	} else if j.cfg.GNSS.PPS.Kind == "phc" && p.Counted > 0 {
		j.add(Check{ID: "pps.width", Title: "Pulse width", Verdict: Warn, Figure: "not measured",
			Reason: "the NIC's pin gave no pulse's two edges", Action: "check that the pin sees the whole pulse"})
	}
	c = Check{ID: "pps.sawtooth", Title: "Sawtooth (qErr)"}
	switch {
	case p.Sawtooth != nil:
		c.Verdict, c.Figure = Pass, fmt.Sprintf("%s to %s", ns(p.Sawtooth.Min), ns(p.Sawtooth.Max))
		c.Reason = "the receiver reports each pulse's quantisation error (UBX TIM-TP) and sitegm takes it off"
		if !p.Disciplined {
			c.Reason = "the receiver reports each pulse's quantisation error (UBX TIM-TP); the running daemon takes it off (the standalone jitter above includes it)"
		}
	case j.obs.Receiver.Module != "":
		c.Verdict, c.Figure = Warn, "not reported"
		c.Reason = "this u-blox sends no UBX TIM-TP: its pulse's sawtooth (several ns, up to tens) stays in the time"
		c.Action = "sitegm gnss configure (it enables TIM-TP)"
	default:
		c.Verdict, c.Figure = Pass, "not reported"
		c.Reason = "the receiver reports no quantisation error; what it adds is in the jitter above"
	}
	j.add(c)
}

func (j *judge) clock() {
	cl := j.obs.Clock
	if cl == nil {
		return
	}
	c := Check{ID: "clock.state", Title: "Clock", Figure: fmt.Sprintf("%s class %d, %s", cl.Final, cl.Class, strings.Join(cl.States, " > "))}
	switch {
	case cl.LockedPolls == j.obs.Polls && cl.Final == "LOCKED":
		c.Verdict, c.Reason = Pass, "locked the whole run"
	case cl.Final == "LOCKED":
		c.Verdict, c.Reason, c.Action = Warn, "locked only for part of the run", "run again once sitegm has been locked for a few minutes"
	default:
		c.Verdict, c.Reason, c.Action = Fail, "not locked at the end of the run", "see sitegm status and journalctl -u sitegm"
	}
	if cl.EstErrorNS >= 0 {
		c.Figure += ", estimated error " + time.Duration(cl.EstErrorNS).String()
	}
	j.add(c)
}

func (j *judge) phc() {
	p := j.r.PHC
	if p == nil {
		return
	}
	c := Check{ID: "phc.read", Title: "PHC reads (" + p.Method + ")", Figure: fmt.Sprintf("%d readings, %d failed, window median %s, worst %s",
		len(p.Samples), p.Failures, ns(p.WindowMedianNS), ns(p.Window.Max))}
	med := p.WindowMedianNS
	switch {
	case len(p.Samples) == 0:
		c.Verdict, c.Reason, c.Action = Fail, "the PHC could not be compared with the system clock", "check "+p.Device+" and the driver"
	case p.Failures*20 > len(p.Samples)+p.Failures:
		c.Verdict, c.Reason, c.Action = Fail, "more than 5% of the PHC reads failed", "see dmesg for the NIC's driver"
	case p.Failures > 0:
		c.Verdict, c.Reason, c.Action = Warn, "some PHC reads failed (sitegm holds when they do)", "see dmesg for the NIC's driver"
	case med <= windowGood:
		c.Verdict, c.Reason = Pass, "each reading pairs the PHC with the system clock this closely"
	case med <= windowBad:
		c.Verdict, c.Reason, c.Action = Warn, "slow PHC reads: the system clock's comparison is that uncertain", "check for PCIe power saving (ASPM) and CPU frequency scaling"
	default:
		c.Verdict, c.Reason, c.Action = Fail, "very slow PHC reads", "check for PCIe power saving (ASPM), CPU frequency scaling, a virtualised NIC"
	}
	j.add(c)
	if len(p.Samples) < 3 {
		return
	}
	c = Check{ID: "phc.system", Title: "System clock from the PHC", Figure: fmt.Sprintf("offset mean %s, sigma %s about its trend, trend %+.1f ppb",
		ns(p.Offset.Mean), ns(p.Residual.Sigma), p.SlopePPB)}
	if !(j.obs.Daemon && j.cfg.Clock.SyncSystem) {
		c.Verdict = Pass
		c.Reason = "shown, not judged: the system clock is not slaved to the PHC by a running sitegm (clock.sync_system)"
		j.add(c)
		return
	}
	bound := math.Abs(p.Offset.Mean) + 3*p.Offset.Sigma
	switch {
	case bound <= systemGood:
		c.Verdict, c.Reason = Pass, "the system clock follows the PHC closely: NTP and the box's logs have the PHC's time"
	case bound <= systemBad:
		c.Verdict, c.Reason, c.Action = Warn, "the system clock follows the PHC loosely", "check that nothing else steers the system clock (chronyd, systemd-timesyncd)"
	default:
		c.Verdict, c.Reason, c.Action = Fail, "the system clock is far from the PHC", "check that nothing else steers the system clock (chronyd, systemd-timesyncd)"
	}
	j.add(c)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
