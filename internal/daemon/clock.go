package daemon

import (
	"fmt"
	"time"

	"sitegm/clock/discipline"
	"sitegm/clock/driftfile"
	"sitegm/clock/leap"
	"sitegm/clock/timebase"
	"sitegm/event"
	"sitegm/hw/nic"
	"sitegm/hw/ntpnet"
	"sitegm/internal/config"
)

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

// disciplineConfig is the configuration's, starting from the drift
// file's frequency or else the clock's own (driftfile.Keeper.Initial).
func (d *Daemon) disciplineConfig() discipline.Config {
	clk := d.tb.Clock()
	dc := d.cfg.Discipline(clk, d.osc, d.table)
	freq, sigma, evs := d.drift.Initial(clk, time.Now())
	d.logEvents(evs)
	dc.InitialFreq, dc.InitialFreqSigma = freq, sigma
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

// apply carries out what the discipline decided.
func (d *Daemon) apply(a discipline.Action) {
	clk := d.tb.Clock()
	if a.Step != 0 {
		ntpnet.Hold(&d.ntpView) // until the map is rebuilt for the stepped clock
		defer d.publishNTP()
		if err := d.tb.Step(a.Step); err != nil {
			d.log.Error("clock step failed", "error", err, "step", a.Step.String())
		}
		// Offsets measured before a step are of another clock.
		d.upstreams.Stepped()
		d.logEvents(d.tb.SlavesStepped(a.Step)) // the slave PHCs move with it
	}
	if a.SetFreq {
		if err := clk.SetFrequency(a.Freq); err != nil {
			d.log.Error("clock frequency adjustment failed", "error", err)
		}
	}
	if err := a.Kernel(clk); err != nil {
		d.log.Error("the kernel refused the clock's state", "event", "kernel_state_error", "error", err)
	}
}

// saveDrift hands the drift file's keeper what the discipline knows now
// (each tick; final at exit, with the frequency estimated then).
func (d *Daemon) saveDrift(now time.Time, final bool) {
	q := d.disc.Quality()
	est := q.Estimate()
	if final {
		est = d.disc.Status(d.nowOrLast().Clock()).Estimate
	}
	d.logEvents(d.drift.Save(now, final, driftfile.Now{EverLocked: q.EverLocked(), Distrusted: d.disc.DriftDistrusted(),
		FreqPPB: est.Freq, SigmaPPB: est.FreqSigma}))
}

// openSlaves slaves the PHCs config.SlaveCandidates names to the
// disciplined PHC (timebase.PHCSlave), before the ports that take their
// stamps on them open; again at a reload, for new ports.
func (d *Daemon) openSlaves() {
	listed, ports := d.cfg.SlaveCandidates()
	d.logEvents(nic.OpenSlaves(d.tb, listed, ports))
}

// openNTS opens the NTS server keys once a table asks for NTS.
func (d *Daemon) openNTS() {
	if d.nts == nil && d.cfg.AnyNTS() {
		var evs []event.Event
		d.nts, evs = ntpnet.OpenKeyRing(d.cfg.NTS.KeyFile, d.cfg.NTS.KeyRotation.Duration, d.cfg.NTS.KeysKept, time.Now())
		d.logEvents(evs)
	}
}

// slaveSystem keeps CLOCK_REALTIME on the PHC once the PHC has locked
// (timebase.Slave).
func (d *Daemon) slaveSystem() {
	if d.slave != nil && d.disc.Quality().EverLocked() {
		d.logEvents(d.slave.Steer(func() { ntpnet.Hold(&d.ntpView) }, d.publishNTP, d.disc.Quality().Kernel()))
	}
}
