package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"sitegm/clock"
	"sitegm/clock/discipline"
	"sitegm/clock/driftfile"
	"sitegm/clock/leap"
	"sitegm/clock/timebase"
	"sitegm/hw/nic"
	"sitegm/hw/pps"
	"sitegm/internal/config"
)

// driftEvery is how often the drift file is rewritten while locked.
const driftEvery = 10 * time.Minute

// ErrNoPHC: the PHC the configuration names is not there (yet): its NIC
// may come up after sitegm at boot, so the caller waits for it.
var ErrNoPHC = timebase.ErrNoPHC

// openClock opens the clock clock.discipline names (clock/timebase).
func openClock(cfg config.Config, table *leap.Table) (*timebase.Timebase, *timebase.Slave, error) {
	dev := ""
	if cfg.Clock.Discipline == config.DisciplinePHC {
		var err error
		if dev, err = nic.PHCDevice(cfg.Clock.PHC); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrNoPHC, cfg.Clock.PHC, err)
		}
	}
	return timebase.Open(string(cfg.Clock.Discipline), dev, cfg.Clock.SyncSystem, table)
}

// ppsSource builds the PPS source of gnss.pps.
func ppsSource(cfg config.Config, tb *timebase.Timebase) (pps.Source, error) {
	spec := cfg.GNSS.PPS
	clear := cfg.GNSS.PPSEdge == config.EdgeClear
	switch spec.Kind {
	case config.PPSKernel:
		return &pps.KernelSource{Path: spec.Path, Clear: clear}, nil
	case config.PPSSock:
		return &pps.SockSource{Path: spec.Path}, nil
	case config.PPSPHC:
		dev, err := nic.PHCDevice(spec.Path)
		if err != nil {
			return nil, err
		}
		if dev != tb.PHC() {
			return nil, fmt.Errorf("gnss.pps %s: the PPS must be timestamped on the disciplined PHC", dev)
		}
		return &pps.ExttsSource{Device: dev, Channel: uint32(spec.Channel), Clear: clear, Width: cfg.GNSS.PPSWidth.Duration}, nil
	}
	return nil, nil // none
}

// measNoise is the sample noise to expect from a PPS source before the
// servo has measured it (it does within eight samples). It is a prior, so
// it errs on the wide side: 2 µs for every pulse source, though a timing
// receiver on a NIC's pin scatters by tens of ns; a narrow prior let a
// noisy pulse lock early and advertise a bound smaller than the clock's
// real error (docs/clock.md, "The PPS noise prior"; clock/sim
// TestPPSNoiseHonestWhateverItIs).
func measNoise(kind config.PPSKind) time.Duration {
	if kind == config.PPSNone {
		return 20 * time.Millisecond
	}
	return 2 * time.Microsecond
}

func (d *Daemon) disciplineConfig() discipline.Config {
	g, clk := d.cfg.GNSS, d.tb.Clock()
	dc := discipline.Config{
		Osc: d.osc, Timescale: clk.Timescale(),
		NMEAOnly: g.PPS.Kind == config.PPSNone, NMEADelay: g.NMEADelay.Duration,
		MeasNoise: measNoise(g.PPS.Kind), LatencyLo: g.NMEALatency.Lo, LatencyHi: g.NMEALatency.Hi, Servo: string(d.cfg.Clock.Servo),
		Holdover: d.cfg.Clock.Holdover.Duration, HoldoverMaxError: d.cfg.Clock.HoldoverMaxError.Duration,
		JumpThreshold: d.cfg.Clock.JumpThreshold.Duration, FollowJumps: d.cfg.Clock.FollowJumps.Duration,
		MaxFreq: clk.MaxFrequency(), Leap: d.table,
		NoGNSS: g.Device == "", Upstreams: len(d.cfg.Upstream) > 0, UpstreamMargin: d.cfg.Clock.UpstreamMargin.Duration, UpstreamMaxError: d.cfg.Clock.UpstreamMaxError.Duration,
	}
	r, err := driftfile.Read(d.cfg.Clock.DriftFile, clk.MaxFrequency())
	switch {
	case err == nil && strings.EqualFold(r.Clock, clk.Name()):
		dc.InitialFreq = r.FreqPPB
		dc.InitialFreqSigma = driftfile.Sigma(r, d.osc, time.Now())
		// Start from the remembered frequency at once: every second at
		// the wrong rate is error the servo has to take out.
		clk.SetFrequency(r.FreqPPB)
		d.log.Info("drift file read", "event", "drift_read", "freq_ppb", r.FreqPPB, "sigma_ppb", dc.InitialFreqSigma,
			"age", time.Since(r.Written).Round(time.Second).String())
	case err != nil && !os.IsNotExist(err):
		d.log.Warn("drift file unusable; locking without it", "event", "drift_unusable", "error", err)
	}
	return dc
}

// clockNow reads the disciplined clock (main loop only): on a failed read
// it says so, and the caller skips what needed the time.
func (d *Daemon) clockNow() (timebase.Instant, bool) {
	t, err := d.tb.Now()
	if err != nil {
		return t, false
	}
	d.lastNow = t
	return t, true
}

// nowOrLast is the clock's time, or its last good read when it cannot be
// read: for reports (status, estimates), never for what is served.
func (d *Daemon) nowOrLast() timebase.Instant {
	if t, ok := d.clockNow(); ok {
		return t
	}
	return d.lastNow
}

// clockUTC is the disciplined clock's time as UTC (its last good read
// when it cannot be read now).
func (d *Daemon) clockUTC() time.Time {
	utc, _ := d.nowOrLast().UTC()
	return utc
}

// receiverUTC is the UTC time of a receiver message that arrived at host
// time at: the disciplined clock's UTC while it is synchronized (the time
// sitegm serves), else the receiver's latest dated epoch carried forward
// by the host's elapsed time. A leap second a receiver announces "in N
// seconds" is placed on that timeline, never on the host's clock, which
// may be anything at boot.
func (d *Daemon) receiverUTC(at time.Time) (time.Time, bool) {
	if d.disc.Quality().Synchronized() {
		return d.clockUTC(), true
	}
	if d.lastEpoch.IsZero() {
		return time.Time{}, false
	}
	return d.lastEpoch.Add(at.Sub(d.lastEpochAt)), true
}

// reportClockReads logs the first failed read of the disciplined clock
// (WARNING clock_read_error, naming the error) and its recovery (NOTICE
// clock_read_ok, with how many failed and for how long). While reads
// fail, nothing that needs the clock's time is served or steered: sitegm
// holds.
func (d *Daemon) reportClockReads(now time.Time) {
	n, lastErr := d.tb.Failures()
	name := d.tb.Clock().Name()
	switch {
	case n != d.failSeen:
		d.lastFail = now
		if d.clockFail.IsZero() {
			d.clockFail, d.failAtStart = now, d.failSeen
			d.log.Warn("the disciplined clock cannot be read: holding (nothing that needs its time is served or steered)",
				"event", "clock_read_error", "error", lastErr, "clock", name)
		}
	case !d.clockFail.IsZero() && now.Sub(d.lastFail) >= time.Second:
		d.log.Log(context.Background(), discipline.LevelNotice, "the disciplined clock reads again", "event", "clock_read_ok",
			"clock", name, "failed_reads", n-d.failAtStart, "failed_for", d.lastFail.Sub(d.clockFail).Round(time.Millisecond).String())
		d.clockFail = time.Time{}
	}
	d.failSeen = n
}

// apply carries out what the discipline decided.
func (d *Daemon) apply(a discipline.Action) {
	clk := d.tb.Clock()
	if a.Step != 0 {
		if err := clk.Step(a.Step); err != nil {
			d.log.Error("clock step failed", "error", err, "step", a.Step.String())
		}
		// Offsets measured before a step are of another clock.
		d.upstreams.Stepped()
	}
	if a.SetFreq {
		if err := clk.SetFrequency(a.Freq); err != nil {
			d.log.Error("clock frequency adjustment failed", "error", err)
		}
	}
	if a.SetLeap {
		if ls, ok := clk.(clock.LeapSetter); ok {
			if err := ls.SetLeap(a.Leap); err != nil {
				d.log.Error("kernel leap second flag", "error", err)
			}
		}
	}
}

// saveDrift writes the drift file every driftEvery while locked, and on
// exit when the frequency is known.
func (d *Daemon) saveDrift(final bool) {
	path := d.cfg.Clock.DriftFile
	if path == "" {
		return
	}
	if d.disc.DriftDistrusted() && !d.driftSetAside {
		d.driftSetAside = true
		if err := driftfile.SetAside(path); err == nil {
			d.log.Warn("drift file set aside: GNSS disagreed with it", "event", "drift_set_aside", "file", path+".rejected")
		}
	}
	q := d.disc.Quality()
	if !q.EverLocked() || (!final && time.Since(d.lastDrift) < driftEvery) {
		return
	}
	est := q.Estimate()
	if final {
		est = d.disc.Status(d.nowOrLast().Clock()).Estimate
	}
	if est.FreqSigma <= 0 || est.FreqSigma > 1000 {
		return
	}
	r := driftfile.Record{FreqPPB: est.Freq, SigmaPPB: est.FreqSigma, Written: time.Now().UTC(), Clock: d.tb.Clock().Name(), Oscillator: d.osc.Name}
	if err := driftfile.Write(path, r); err != nil {
		d.log.Warn("drift file not written", "event", "drift_write_error", "error", err)
		return
	}
	d.lastDrift = time.Now()
	d.log.Debug("drift file written", "freq_ppb", r.FreqPPB)
}

// checkLeapExpiry warns, once a day, that the leap table expired: the time
// is still served, but a leap second announced after the expiry would be
// missed unless the receiver reports it.
func (d *Daemon) checkLeapExpiry(now time.Time) {
	if !d.table.Expired(now) || now.Sub(d.leapWarned) < 24*time.Hour {
		return
	}
	d.leapWarned = now
	exp := "unknown"
	if !d.table.Expires.IsZero() {
		exp = d.table.Expires.Format("2006-01-02")
	}
	d.log.Warn("leap second table expired: update tzdata (leap-seconds.list); GNSS time is still served, "+
		"and PTP utcOffsetValid stays false unless the receiver confirms the offset",
		"event", "leap_table_expired", "leap_source", d.table.Source, "expired", exp)
}

// slaveSystem keeps CLOCK_REALTIME on the PHC once the PHC has locked
// (timebase.Slave).
func (d *Daemon) slaveSystem() {
	if d.slave == nil || !d.disc.Quality().EverLocked() {
		return
	}
	if step, err := d.slave.Step(); err == nil && step != 0 {
		d.log.Log(context.Background(), discipline.LevelNotice, "system clock stepped onto the PHC", "event", "system_stepped", "step", step.String())
	}
}
