// Package daemon is the glue of `sitegm run`: it owns every sans-I/O core
// (decoder, discipline, monitors, later the servers), feeds them from the
// I/O adapters, applies what they decide to the clock, and logs what they
// report. One goroutine (Run's loop) owns all state; adapters talk to it
// over channels.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sitegm/clock"
	"sitegm/clock/discipline"
	"sitegm/clock/leap"
	"sitegm/clock/servo"
	"sitegm/hw/caps"
	"sitegm/hw/claim"
	"sitegm/hw/gnss"
	"sitegm/hw/pps"
	"sitegm/hw/serial"
	"sitegm/internal/config"
	"sitegm/internal/version"
	"sitegm/ptp"
	v1 "sitegm/ptp/v1"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/facebook/time/ptp/protocol"
)

// tickEvery drives timeouts: the decoder's idle close (300 ms), the
// discipline's holdover and quality, the monitors' silence detection.
const tickEvery = 100 * time.Millisecond

// driftEvery is how often the drift file is rewritten while locked.
const driftEvery = 10 * time.Minute

// Daemon is one running sitegm.
type Daemon struct {
	cfg   config.Config
	log   *slog.Logger
	dec   *gnss.Decoder
	gnss  *gnss.Monitor
	ppsM  *pps.Monitor
	tb    *timebase
	disc  *discipline.Discipline
	table *leap.Table
	src   pps.Source
	osc   clock.Oscillator
	// lastNow is the disciplined clock's time at its last good read;
	// clockFail since when reads fail (zero: they do not), and how many
	// failures were reported already.
	lastNow               time.Time
	clockFail, lastFail   time.Time
	failSeen, failAtStart uint64
	// drift file
	lastDrift     time.Time
	driftSetAside bool
	// the receiver's latest dated, plausible epoch and when it came (host)
	lastEpoch, lastEpochAt time.Time
	// leap table expiry warning, once a day
	leapWarned   time.Time
	sysServo     *servo.Kalman
	sysWindow    time.Duration // the last PHC-system reading's bracket
	ptps         []*ptpSlot
	ntps         []*ntpSlot
	ntpView      atomic.Pointer[ntpView]
	ntpPrecision int8
	gmLatest     atomic.Pointer[gmPair]
	servers      sync.WaitGroup
	// claims: what this daemon serves alone (see claimNames)
	claims claim.Set
	// caps: the capabilities kept (NarrowCapabilities)
	caps         caps.Set
	capsNarrowed bool
	// status, readiness, reload
	started  time.Time
	ready    atomic.Bool
	status   statusBook
	rateSeen [2]uint64 // NTP KoD and rate drops already reported
	rejected rejectedBook
	// Level, when set, is the logger's level, changed by SIGHUP.
	Level *slog.LevelVar
	// Reload, when set, loads the configuration again (SIGHUP).
	Reload func() (config.Config, error)
}

// ptpSlot holds the running server of one [[ptp]] section (nil while its
// interface is not there yet).
type ptpSlot struct {
	cfg  config.PTP
	srv  atomic.Pointer[ptpServer]
	slot slot
}

// New claims what the configuration serves, opens the clock and checks
// what the configuration needs before anything starts. A second sitegm
// for the same status socket, receiver or ports fails here, before it
// touches the clock, a socket or a file of the first. On error nothing
// stays claimed.
func New(cfg config.Config, log *slog.Logger) (d *Daemon, err error) {
	var claims claim.Set
	if err := claims.Ensure(claimNames(cfg.Status, cfg.GNSS, cfg.PTP, cfg.NTP)); err != nil {
		return nil, fmt.Errorf("%w: another sitegm serves the same thing; stop it first (systemctl stop sitegm)", err)
	}
	defer func() {
		if err != nil {
			claims.Release()
		}
	}()
	floor, err := cfg.GNSS.DateFloorTime(version.DateFloor())
	if err != nil {
		return nil, fmt.Errorf("gnss.date_floor: %w", err)
	}
	osc, err := clock.OscillatorByName(cfg.Clock.Oscillator)
	if err != nil {
		return nil, err
	}
	// leap-seconds.list is about 11 kB; 1 MB is more than any will be.
	table, notes := leap.Load(func(p string) ([]byte, error) { return config.ReadLimited(p, 1<<20) }, cfg.GNSS.Leapfile, leap.DefaultTZif)
	for _, n := range notes {
		log.Warn("leap second table: "+n, "event", "leap_table_fallback")
	}
	tb, err := openTimebase(cfg, table)
	if err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	src, err := ppsSource(cfg, tb)
	if err != nil {
		return nil, fmt.Errorf("gnss.pps: %w", err)
	}
	d = &Daemon{
		cfg: cfg, log: log, tb: tb, table: table, src: src, osc: osc, claims: claims,
		dec:  gnss.NewDecoder(gnss.Options{DateFloor: floor}),
		gnss: gnss.NewMonitor(log, cfg.GNSS.Device, time.Now()),
		ppsM: pps.NewMonitor(log, cfg.GNSS.PPS.String()),
	}
	now0, err := tb.now()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPHC, err) // waited for, like a PHC not there yet
	}
	d.lastNow = now0
	d.disc = discipline.New(d.disciplineConfig(), now0)
	for _, p := range cfg.PTP {
		d.ptps = append(d.ptps, &ptpSlot{cfg: p})
	}
	for _, n := range cfg.NTP {
		d.ntps = append(d.ntps, &ntpSlot{cfg: n})
	}
	return d, nil
}

func (d *Daemon) disciplineConfig() discipline.Config {
	g := d.cfg.GNSS
	dc := discipline.Config{
		Osc: d.osc, Timescale: d.tb.clk.Timescale(),
		NMEAOnly: g.PPS.Kind == config.PPSNone, NMEADelay: g.NMEADelay.Duration,
		MeasNoise: measNoise(g.PPS.Kind), LatencyLo: g.NMEALatency.Lo, LatencyHi: g.NMEALatency.Hi, Servo: string(d.cfg.Clock.Servo),
		Holdover: d.cfg.Clock.Holdover.Duration, HoldoverMaxError: d.cfg.Clock.HoldoverMaxError.Duration,
		JumpThreshold: d.cfg.Clock.JumpThreshold.Duration, FollowJumps: d.cfg.Clock.FollowJumps.Duration,
		MaxFreq: d.tb.clk.MaxFrequency(), Leap: d.table,
	}
	if r, err := readDrift(d.cfg.Clock.DriftFile, d.tb.clk.MaxFrequency()); err == nil && sameClock(r.Clock, d.tb.clk.Name()) {
		dc.InitialFreq = r.FreqPPB
		dc.InitialFreqSigma = driftSigma(r, d.osc, time.Now())
		// Start from the remembered frequency at once: every second at
		// the wrong rate is error the servo has to take out.
		d.tb.clk.SetFrequency(r.FreqPPB)
		d.log.Info("drift file read", "event", "drift_read", "freq_ppb", r.FreqPPB, "sigma_ppb", dc.InitialFreqSigma,
			"age", time.Since(r.Written).Round(time.Second).String())
	} else if err != nil && !os.IsNotExist(err) {
		d.log.Warn("drift file unusable; locking without it", "event", "drift_unusable", "error", err)
	}
	return dc
}

// Run serves until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("sitegm starting", "event", "start", "version", version.BuildDate,
		"gnss_device", d.cfg.GNSS.Device, "gnss_pps", d.cfg.GNSS.PPS, "clock_discipline", d.cfg.Clock.Discipline,
		"clock", d.tb.clk.Name(), "clock_timescale", d.tb.clk.Timescale().String(), "oscillator", d.osc.Name,
		"leap_source", d.table.Source, "tai_utc", d.table.Offset(time.Now()))
	d.checkLeapExpiry(time.Now())
	d.checkUnitAllow()
	d.logWarnings(d.cfg.Warnings)

	chunks, links := make(chan serial.Chunk, 64), make(chan serial.Link, 4)
	reader := &serial.Reader{Device: d.cfg.GNSS.Device, Baud: d.cfg.GNSS.Baud}
	edges := make(chan pps.Edge, 16)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		reader.Run(ctx, chunks, links)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		d.runPPS(ctx, edges)
	}()
	d.started = time.Now()
	d.ntpPrecision = clockPrecision(d.tb.now)
	d.publishGM()
	d.publishNTP()
	defer d.servers.Wait()
	d.startServers(ctx)
	stopStatus, err := d.serveStatus()
	if err != nil {
		d.log.Warn("status socket unavailable; `sitegm status` will not answer", "event", "status_socket_error",
			"socket", d.cfg.Status.Socket, "error", err.Error())
		stopStatus = func() {}
	}
	defer func() {
		if stopStatus != nil {
			stopStatus()
		}
	}()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(signals)

	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var status <-chan time.Time
	var statusT *time.Ticker
	setStatus := func(iv time.Duration) {
		if statusT != nil {
			statusT.Stop()
			statusT, status = nil, nil
		}
		if iv > 0 {
			statusT = time.NewTicker(iv)
			status = statusT.C
		}
	}
	setStatus(d.cfg.Log.StatusInterval.Duration)
	defer setStatus(0)
	slave := time.NewTicker(time.Second)
	defer slave.Stop()
	var watchdog <-chan time.Time
	// Pat at half of WatchdogSec, as sd_watchdog_enabled(3) advises.
	if iv, _ := sddaemon.SdWatchdogEnabled(false); iv > 0 {
		iv /= 2
		w := time.NewTicker(iv)
		defer w.Stop()
		watchdog = w.C
	}
	rateReport := time.NewTicker(time.Minute)
	defer rateReport.Stop()
	for {
		select {
		case <-ctx.Done():
			sdNotify("STOPPING=1")
			cancel()
			<-done
			<-done
			d.saveDrift(true)
			d.log.Info("sitegm stopped", "event", "stop")
			// Everything this daemon made is closed before its claims
			// go: a successor must find nothing of it left behind.
			d.servers.Wait()
			stopStatus()
			stopStatus = nil
			d.claims.Release()
			return nil
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				d.reload(ctx)
				setStatus(d.cfg.Log.StatusInterval.Duration)
				continue
			}
			d.log.Warn("operator resync: the clock will be stepped onto GNSS time at the next sample", "event", "resync_requested")
			d.disc.Resync()
		case <-watchdog:
			// From the main loop: a wedged loop stops the pats and
			// systemd restarts sitegm.
			sdNotify("WATCHDOG=1")
		case <-rateReport.C:
			d.reportRateLimited()
			if s := d.status.get(); s != nil {
				d.reportRejected(s)
			}
		case c := <-chunks:
			d.events(d.dec.Feed(c.Data, c.At), c.At)
		case l := <-links:
			d.gnss.Link(l, time.Now())
		case e := <-edges:
			d.edge(e)
		case now := <-tick.C:
			d.events(d.dec.Tick(now), now)
			d.gnss.Tick(now, d.dec.FramerStats().Skipped)
			d.ppsM.Tick(now)
			if cnow, ok := d.clockNow(); ok {
				a, evs := d.disc.Tick(cnow)
				d.apply(a)
				d.logEvents(evs)
				d.publishGM()
			}
			d.publishNTP()
			d.saveDrift(false)
			d.checkLeapExpiry(now)
			d.reportClockReads(now)
		case <-slave.C:
			d.slaveSystem()
			d.notify(d.snapshot())
		case <-status:
			d.logStatus()
		}
	}
}

// runPPS runs the PPS source, restarting it (with a pause) when it fails:
// the device may appear after sitegm starts.
func (d *Daemon) runPPS(ctx context.Context, edges chan<- pps.Edge) {
	if d.src == nil {
		return
	}
	failed := false
	for ctx.Err() == nil {
		err := d.src.Run(ctx, edges)
		if ctx.Err() != nil {
			return
		}
		if !failed {
			d.log.Warn("PPS source failed; retrying", "event", "pps_source_error", "pps", d.src.Name(), "error", fmt.Sprint(err))
			failed = true
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
}

func (d *Daemon) edge(e pps.Edge) {
	d.ppsM.Edge(time.Now())
	t, err := d.tb.fromEdge(e)
	if errors.Is(err, errWrongClock) {
		d.log.Error("PPS edge on the wrong clock", "error", err)
		return
	}
	if err != nil {
		return // the clock cannot be read (counted, reported once): no sample
	}
	d.logEvents(d.disc.Edge(t))
}

func (d *Daemon) events(evs []gnss.Event, at time.Time) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case gnss.Report:
			if e.HasDate && e.Implausible == "" {
				d.lastEpoch, d.lastEpochAt = e.Time, at
			}
			d.log.Debug("gnss report", "gnss_time", e.UTCString(), "gnss_valid", e.Valid, "gnss_fix", e.Fix.String(),
				"gnss_sats", e.Sats, "gnss_sentence", e.Sentence, "gnss_first_ns", e.FirstAt.UnixNano())
			d.gnss.Report(e, at)
			if e.HasDate {
				arrival := e.FirstAt
				if arrival.IsZero() {
					arrival = at
				}
				arr, err := d.tb.fromRealtime(arrival)
				cnow, ok := d.clockNow()
				if err != nil || !ok {
					continue // no sample without the clock's own time for it
				}
				a, evs := d.disc.Label(discipline.Label{UTC: e.Time, Leap60: e.Leap60, Valid: e.Valid,
					Arrival: arr, Now: cnow})
				d.apply(a)
				d.logEvents(evs)
			}
		case gnss.Text:
			d.gnss.Text(e, at)
		case gnss.TimePulse:
			if !e.QErrInvalid {
				d.disc.TimePulse(d.pulseUTC(e), e.QErr)
			}
		case gnss.LeapInfo:
			now, ok := d.receiverUTC(at)
			if !ok {
				continue // nothing to place the announcement on yet
			}
			in := time.Duration(e.TimeToLSEvent) * time.Second
			d.logEvents(d.disc.ReceiverLeap(now, int(e.CurrLS), e.CurrLSValid && e.CurrLSSource != 0,
				int(e.LSChange), in, e.TimeToValid))
		}
	}
}

// sdNotify tells the service manager (sd_notify(3)); outside systemd it
// does nothing.
func sdNotify(state string) { sddaemon.SdNotify(false, state) }

// logWarnings logs what the configuration file says that still works but
// should change.
func (d *Daemon) logWarnings(ws []string) {
	for _, w := range ws {
		d.log.Warn("configuration: "+w, "event", "config_warning")
	}
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

// clockNow reads the disciplined clock (main loop only): on a failed read
// it says so, and the caller skips what needed the time.
func (d *Daemon) clockNow() (time.Time, bool) {
	t, err := d.tb.now()
	if err != nil {
		return time.Time{}, false
	}
	d.lastNow = t
	return t, true
}

// reportClockReads logs the first failed read of the disciplined clock
// (WARNING clock_read_error, naming the error) and its recovery (NOTICE
// clock_read_ok, with how many failed and for how long). While reads
// fail, nothing that needs the clock's time is served or steered: sitegm
// holds.
func (d *Daemon) reportClockReads(now time.Time) {
	n := d.tb.failures.Load()
	switch {
	case n != d.failSeen:
		d.lastFail = now
		if d.clockFail.IsZero() {
			d.clockFail, d.failAtStart = now, d.failSeen
			msg := ""
			if e := d.tb.lastErr.Load(); e != nil {
				msg = *e
			}
			d.log.Warn("the disciplined clock cannot be read: holding (nothing that needs its time is served or steered)",
				"event", "clock_read_error", "error", msg, "clock", d.tb.clk.Name())
		}
	case !d.clockFail.IsZero() && now.Sub(d.lastFail) >= time.Second:
		d.log.Log(context.Background(), discipline.LevelNotice, "the disciplined clock reads again", "event", "clock_read_ok",
			"clock", d.tb.clk.Name(), "failed_reads", n-d.failAtStart, "failed_for", d.lastFail.Sub(d.clockFail).Round(time.Millisecond).String())
		d.clockFail = time.Time{}
	}
	d.failSeen = n
}

// clockUTC is the disciplined clock's time as UTC (its last good read
// when it cannot be read now).
func (d *Daemon) clockUTC() time.Time {
	now := d.nowOrLast()
	if d.tb.clk.Timescale() == clock.TAI {
		now, _ = d.table.TAIToUTC(now)
	}
	return now
}

// nowOrLast is the clock's time, or its last good read when it cannot be
// read: for reports (status, estimates), never for what is served.
func (d *Daemon) nowOrLast() time.Time {
	if t, ok := d.clockNow(); ok {
		return t
	}
	return d.lastNow
}

// pulseUTC is the UTC second a TIM-TP describes: its week and time of week
// on the pulse's time base (UTC, or GPS time which is UTC plus GPS-UTC).
func (d *Daemon) pulseUTC(tp gnss.TimePulse) time.Time {
	gpsEpoch := time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)
	t := gpsEpoch.Add(time.Duration(tp.Week)*7*24*time.Hour + time.Duration(tp.TowMS)*time.Millisecond)
	if !tp.TimeBaseUTC {
		gpsMinusUTC := d.table.Offset(t) + leap.GPSMinusTAI
		t = t.Add(-time.Duration(gpsMinusUTC) * time.Second)
	}
	return t.Round(time.Second)
}

// apply carries out what the discipline decided.
func (d *Daemon) apply(a discipline.Action) {
	if a.Step != 0 {
		if err := d.tb.clk.Step(a.Step); err != nil {
			d.log.Error("clock step failed", "error", err, "step", a.Step.String())
		}
	}
	if a.SetFreq {
		if err := d.tb.clk.SetFrequency(a.Freq); err != nil {
			d.log.Error("clock frequency adjustment failed", "error", err)
		}
	}
	if a.SetLeap {
		if ls, ok := d.tb.clk.(clock.LeapSetter); ok {
			if err := ls.SetLeap(a.Leap); err != nil {
				d.log.Error("kernel leap second flag", "error", err)
			}
		}
	}
}

func (d *Daemon) logEvents(evs []discipline.Event) {
	for _, e := range evs {
		d.log.Log(context.Background(), e.Level, e.Msg, append([]any{"event", e.Name}, e.Attrs...)...)
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
		if err := setAsideDrift(path); err == nil {
			d.log.Warn("drift file set aside: GNSS disagreed with it", "event", "drift_set_aside", "file", path+".rejected")
		}
	}
	q := d.disc.Quality()
	if !q.EverLocked() || (!final && time.Since(d.lastDrift) < driftEvery) {
		return
	}
	est := q.Estimate()
	if final {
		est = d.disc.Status(d.nowOrLast()).Estimate
	}
	if est.FreqSigma <= 0 || est.FreqSigma > 1000 {
		return
	}
	r := driftRecord{FreqPPB: est.Freq, SigmaPPB: est.FreqSigma, Written: time.Now().UTC(), Clock: d.tb.clk.Name(), Oscillator: d.osc.Name}
	if err := writeDrift(path, r); err != nil {
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

// slaveSystem keeps CLOCK_REALTIME on the PHC (discipline = "phc"): the
// PHC counts TAI, the system clock UTC. Its own servo (the same Kalman
// servo, fed with PTP_SYS_OFFSET_PRECISE, _EXTENDED or basic readings,
// best of several) does phc2sys's job.
func (d *Daemon) slaveSystem() {
	if d.tb.system == nil || d.tb.phc == nil || !d.disc.Quality().EverLocked() {
		return
	}
	so, err := d.tb.phc.SysOffset()
	if err != nil {
		return
	}
	if d.sysServo == nil {
		d.sysServo = servo.NewKalman(servo.Config{Osc: clock.TCXO, MeasNoise: max(so.Window, time.Microsecond),
			MaxFreq: clock.SystemMaxPPB, StepThreshold: time.Millisecond})
	}
	utc, _ := d.table.TAIToUTC(so.PHC)
	d.sysWindow = so.Window
	a := d.sysServo.Sample(so.System, so.System.Sub(utc), so.System)
	if a.Step != 0 {
		d.tb.system.Step(a.Step)
		d.log.Log(context.Background(), discipline.LevelNotice, "system clock stepped onto the PHC", "event", "system_stepped", "step", a.Step.String())
	}
	if a.SetFreq {
		d.tb.system.SetFrequency(a.Freq)
	}
}

// logStatus writes the periodic status line.
func (d *Daemon) logStatus() {
	g := d.gnss.Snapshot()
	fs := d.dec.FramerStats()
	age := "never"
	if !g.LastReport.IsZero() {
		age = time.Since(g.LastReport).Round(100 * time.Millisecond).String()
	}
	st := d.disc.Status(d.nowOrLast())
	freq, _ := d.tb.clk.Frequency()
	attrs := []any{"event", "status",
		"gnss_state", string(g.State), "gnss_fix", g.Fix, "gnss_sats", g.Sats, "gnss_time", g.LastTime,
		"gnss_last_report_age", age, "gnss_reports", g.Reports, "gnss_valid_reports", g.Valid,
		"gnss_sentences", fs.NMEA, "gnss_rejected_bytes", fs.Skipped,
		"gnss_checksum_errors", fs.Rejects[gnss.RejectNMEAChecksum] + fs.Rejects[gnss.RejectUBXChecksum],
		"pps_ok", d.ppsM.OK(), "pps_edges", st.Pairing.Edges,
		"clock_state", string(st.State), "clock_class", st.ClockClass, "servo_state", st.ServoState.String(),
		"offset_ns", st.Estimate.Offset.Nanoseconds(), "est_error_ns", clampNS(st.EstError),
		"freq_ppb", round3(freq), "meas_noise_ns", st.Estimate.MeasNoise.Nanoseconds(),
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
	if d.tb.virtual != nil {
		// What the virtual clock reads against the host clock, at one
		// instant: how tests compare it with gnss-sim's truth.
		h := time.Now()
		attrs = append(attrs, "clock_minus_host_ns", d.tb.virtual.FromHost(h).Sub(h).Nanoseconds())
	}
	if st.State == "HOLDOVER" {
		attrs = append(attrs, "holdover_elapsed", st.HoldoverElapsed.Round(time.Second).String(),
			"holdover_remaining", st.HoldoverRemaining.Round(time.Second).String())
	}
	d.log.Info("status", attrs...)
}

func clampNS(d time.Duration) int64 {
	if d == time.Duration(1<<63-1) {
		return -1
	}
	return d.Nanoseconds()
}

func round3(x float64) float64 { return float64(int64(x*1000)) / 1000 }

// publishGM hands every PTP port what the quality machine advertises now.
func (d *Daemon) publishGM() {
	g, g1 := d.gmNow()
	d.gmLatest.Store(&gmPair{g, g1})
	for _, slot := range d.ptps {
		if srv := slot.srv.Load(); srv != nil {
			srv.setGM(g, g1)
		}
	}
}

// gmNow derives the PTPv2 and PTPv1 grandmaster fields from the one
// quality state.
func (d *Daemon) gmNow() (ptp.GM, v1.GM) {
	q := d.disc.Quality()
	// The leap flags are for the day the served clock is in, not the
	// host's: they are only set while synchronized, when the two agree.
	tp := q.TimeProperties(d.clockUTC(), d.table, d.disc.ReceiverLS())
	var flags uint16
	for _, f := range []struct {
		on   bool
		flag uint16
	}{{tp.Leap61, protocol.FlagLeap61}, {tp.Leap59, protocol.FlagLeap59}, {tp.UTCOffsetValid, protocol.FlagCurrentUtcOffsetValid},
		{tp.PTPTimescale, protocol.FlagPTPTimescale}, {tp.TimeTraceable, protocol.FlagTimeTraceable}, {tp.FrequencyTraceable, protocol.FlagFrequencyTraceable}} {
		if f.on {
			flags |= f.flag
		}
	}
	c := q.V1()
	return ptp.GM{
			Quality: protocol.ClockQuality{ClockClass: protocol.ClockClass(q.ClockClass()),
				ClockAccuracy: protocol.ClockAccuracy(q.ClockAccuracy()), OffsetScaledLogVariance: q.OffsetScaledLogVariance()},
			TimeSource: protocol.TimeSource(tp.TimeSource), UTCOffset: tp.CurrentUTCOffset, Flags: flags,
		}, v1.GM{Stratum: c.Stratum, Identifier: c.Identifier, Variance: c.Variance, Preferred: c.Preferred,
			UTCOffset: tp.CurrentUTCOffset, Leap61: tp.Leap61, Leap59: tp.Leap59, UTCReasonable: tp.UTCOffsetValid}
}

// PTPStatuses reports every PTP port.
func (d *Daemon) PTPStatuses() []PTPStatus {
	var out []PTPStatus
	for _, slot := range d.ptps {
		st := PTPStatus{Interface: slot.cfg.Interface, Profile: slot.cfg.Profile, Domain: slot.cfg.Domain,
			Transport: string(slot.cfg.Transport), State: "DOWN"}
		if srv := slot.srv.Load(); srv != nil {
			if p := srv.status.Load(); p != nil {
				st = *p
			}
		}
		out = append(out, st)
	}
	return out
}
