// Package daemon is the glue of `sitegm run`: it owns every sans-I/O core
// (decoder, monitors, discipline), feeds them from the hw/ adapters,
// applies what they decide to the clock, hands the servers (hw/ptpnet,
// hw/ntpnet) what the quality state advertises, and logs what they report.
// One goroutine (Run's loop) owns all state; adapters talk to it over
// channels. docs/architecture.md draws the whole.
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

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"sitegm/clock"
	"sitegm/clock/discipline"
	"sitegm/clock/driftfile"
	"sitegm/clock/leap"
	"sitegm/clock/timebase"
	"sitegm/event"
	"sitegm/hw/caps"
	"sitegm/hw/claim"
	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
	"sitegm/hw/ntpnet"
	"sitegm/hw/pps"
	"sitegm/hw/serial"
	"sitegm/internal/config"
	"sitegm/internal/status"
	"sitegm/internal/version"
	"sitegm/internal/watch"
	"sitegm/ntp"
	"sitegm/ntp/upstream"
)

// tickEvery drives timeouts: the decoder's idle close (300 ms), the
// discipline's holdover and quality, the monitors' silence detection.
const tickEvery = 100 * time.Millisecond

// Daemon is one running sitegm.
type Daemon struct {
	cfg   config.Config
	log   *slog.Logger
	dec   *gnss.Decoder
	gnss  *gnss.Monitor
	ppsM  *pps.Monitor
	tb    *timebase.Timebase
	disc  *discipline.Discipline
	table *leap.Table
	src   pps.Source
	osc   clock.Oscillator
	// lastNow is the disciplined clock's last good read; reads watches
	// the reads that fail.
	lastNow      timebase.Instant
	reads        timebase.ReadWatch
	drift        driftfile.Keeper
	slave        *timebase.Slave // CLOCK_REALTIME on the PHC (sync_system)
	nts          *ntpnet.KeyRing // the NTS server keys, once a table asks for NTS
	ptps         []*ptpSlot
	ntps         []*ntpSlot
	ntpView      atomic.Pointer[ntpnet.View]
	ntpPrecision int8
	gmLatest     atomic.Pointer[gmPair]
	servers      sync.WaitGroup
	// claims: what this daemon serves alone (config.Claims)
	claims claim.Set
	// status, readiness, reload
	started time.Time
	ready   atomic.Bool
	status  status.Book
	minute  status.Minute // the minute's summaries of rejected input and rate limiting
	// watch: followers, monitored hosts, history ([http] page, metrics)
	watch    *watch.Watch
	ownBound atomic.Int64 // for the monitors: the clock's error bound while it knows the time, 0 when not (quality.TrustedBound)
	// upstreams: the NTP servers of the cross-check, and their last selection
	upstreams *upstream.Set
	selection upstream.Selection
	// Caps are the capabilities the process kept, CapsNarrowed whether
	// it dropped any at start (a reload cannot have them back).
	Caps         caps.Set
	CapsNarrowed bool
	// Level, when set, is the logger's level, changed by SIGHUP.
	Level *slog.LevelVar
	// Reload, when set, loads the configuration again (SIGHUP).
	Reload func() (config.Config, error)
}

// New claims what the configuration serves, opens the clock and checks
// what the configuration needs before anything starts. A second sitegm
// for the same status socket, receiver or ports fails here, before it
// touches the clock, a socket or a file of the first. On error nothing
// stays claimed.
func New(cfg config.Config, log *slog.Logger) (d *Daemon, err error) {
	var claims claim.Set
	if err := claims.Ensure(cfg.Claims()); err != nil {
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
	tb, slave, err := openClock(cfg, table)
	if err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	g := cfg.GNSS
	src, err := pps.Open(g.PPSSource(), tb.PHC())
	if err != nil {
		return nil, fmt.Errorf("gnss.pps: %w", err)
	}
	d = &Daemon{
		cfg: cfg, log: log, tb: tb, slave: slave, table: table, src: src, osc: osc, claims: claims,
		dec:   gnss.NewDecoder(gnss.Options{DateFloor: floor}),
		gnss:  gnss.NewMonitor(cfg.GNSS.Device, time.Now()),
		ppsM:  pps.NewMonitor(cfg.GNSS.PPS.String()),
		drift: driftfile.Keeper{Path: cfg.Clock.DriftFile, Clock: tb.Clock().Name(), Osc: osc, Floor: floor},
	}
	now0, err := tb.Now()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPHC, err) // waited for, like a PHC not there yet
	}
	d.lastNow = now0
	d.gnss.SetHealth(gnss.HealthConfig{JammingThreshold: cfg.GNSS.JammingThreshold})
	d.disc = discipline.New(d.disciplineConfig(), now0.Clock())
	d.watch = watch.New(cfg, time.Now(), log)
	utc0, _ := now0.UTC()
	d.upstreams = upstream.NewSet(cfg.Upstreams(), utc0)
	for _, p := range cfg.PTP {
		d.ptps = append(d.ptps, &ptpSlot{cfg: p.Served()})
	}
	for _, n := range cfg.NTP {
		d.ntps = append(d.ntps, &ntpSlot{cfg: n.Served()})
	}
	return d, nil
}

// Run serves until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	clk := d.tb.Clock()
	d.log.Info("sitegm starting", "event", "start", "version", version.BuildDate,
		"gnss_device", d.cfg.GNSS.Device, "gnss_pps", d.cfg.GNSS.PPS, "clock_discipline", d.cfg.Clock.Discipline,
		"clock", clk.Name(), "clock_timescale", clk.Timescale().String(), "oscillator", d.osc.Name,
		"leap_source", d.table.Source, "tai_utc", d.table.Offset(time.Now()))
	d.logWarnings(d.cfg.Warnings)

	// Taken before anything serves: a SIGHUP while starting waits for the loop (Go's default ends the process).
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(signals)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks, links, edges, done := d.startInputs(ctx)
	d.started = time.Now()
	d.ntpPrecision = ntp.Precision(clk.Now)
	d.publishGM()
	d.publishNTP()
	defer d.servers.Wait()
	d.openSlaves()
	d.logEvents(d.tb.SteerSlaves()) // measured (and stepped) before their ports stamp on them
	d.openNTS()
	d.startServers(ctx)
	stopStatus, err := status.Serve(d.cfg.Status.Socket, &d.status, d.log)
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
	stopHTTP := d.startWatch(ctx)
	defer stopHTTP()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var statusLine <-chan time.Time
	var statusT *time.Ticker
	setStatus := func(iv time.Duration) {
		if statusT != nil {
			statusT.Stop()
			statusT, statusLine = nil, nil
		}
		if iv > 0 {
			statusT = time.NewTicker(iv)
			statusLine = statusT.C
		}
	}
	setStatus(d.cfg.Log.StatusInterval.Duration)
	defer setStatus(0)
	second := time.NewTicker(time.Second)
	defer second.Stop()
	var watchdog <-chan time.Time
	// Pat at half of WatchdogSec, as sd_watchdog_enabled(3) advises.
	if iv, _ := sddaemon.SdWatchdogEnabled(false); iv > 0 {
		w := time.NewTicker(iv / 2)
		defer w.Stop()
		watchdog = w.C
	}
	minute := time.NewTicker(time.Minute)
	defer minute.Stop()
	for {
		select {
		case <-ctx.Done():
			sdNotify("STOPPING=1")
			cancel()
			<-done
			<-done
			d.saveDrift(time.Now(), true)
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
		case <-minute.C:
			if s := d.status.Last(); s != nil {
				d.logEvents(d.minute.Events(s))
			}
			if d.nts != nil {
				d.logEvents(d.nts.Tick(time.Now()))
			}
		case c := <-chunks:
			d.events(d.dec.Feed(c.Data, c.At), c.At)
		case l := <-links:
			d.gnss.Link(l, time.Now())
		case e := <-edges:
			d.edge(e)
		case now := <-tick.C:
			d.tick(now)
		case now := <-second.C:
			d.logEvents(d.tb.SteerSlaves())
			d.slaveSystem()
			d.upstreamsTick()
			s := d.snapshot()
			d.watch.Complete(now, s)
			d.notify(s)
			d.status.Record(s)
			d.watch.Record(now, s)
		case <-statusLine:
			d.logStatus()
		}
	}
}

// startInputs starts the receiver's reader and the PPS source; each
// sends on done when it ended (with ctx).
func (d *Daemon) startInputs(ctx context.Context) (<-chan serial.Chunk, <-chan serial.Link, <-chan pps.Edge, <-chan struct{}) {
	chunks, links := make(chan serial.Chunk, 64), make(chan serial.Link, 4)
	// The greeting asks a u-blox what it is (UBX MON-VER poll: 8 bytes a
	// receiver of another make ignores, as gpsd's probes are ignored).
	// Asked again with the poll until it answers (Greeted).
	reader := &serial.Reader{Device: d.cfg.GNSS.Device, Baud: d.cfg.GNSS.Baud, Greeting: ubx.Append(nil, ubx.ClassMON, ubx.MonVER, nil),
		Greeted: d.gnss.IdentifiedSince, Poll: gnss.PUBX04Poll(), PollEvery: 10 * time.Second} // the leap second count from an NMEA-mode u-blox (clock/discipline LeapInfo)
	edges := make(chan pps.Edge, 16)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if reader.Device == "" {
			<-ctx.Done() // no receiver: NTP only
			return
		}
		reader.Run(ctx, chunks, links)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		if d.src != nil {
			pps.Keep(ctx, d.src, edges, func(err error) {
				d.log.Warn("PPS source failed; retrying", "event", "pps_source_error", "pps", d.src.Name(), "error", fmt.Sprint(err))
			})
		}
	}()
	return chunks, links, edges, done
}

// tick drives every timeout (tickEvery): the decoder's idle close, the
// monitors' silence, the discipline's holdover and quality, and hands
// the servers what they advertise.
func (d *Daemon) tick(now time.Time) {
	d.events(d.dec.Tick(now), now)
	if d.cfg.GNSS.Device != "" {
		d.gnss.Tick(now, d.dec.FramerStats().Skipped)
	}
	d.ppsM.Tick(now)
	d.logEvents(d.gnss.Events())
	d.logEvents(d.ppsM.Events())
	if cnow, ok := d.clockNow(); ok {
		if lw, ok := d.tb.Clock().(clock.LeapWatcher); ok && d.disc.WatchesKernelLeap() {
			k, err := lw.WatchLeap() // a kernel leap second armed (discipline.KernelLeap)
			d.do(d.disc.KernelLeap(cnow.Clock(), k, err))
		}
		d.do(d.disc.Tick(cnow.Clock()))
		d.publishGM()
	}
	d.ownBound.Store(int64(d.disc.Quality().TrustedBound()))
	d.publishNTP()
	d.saveDrift(now, false)
	n, lastErr := d.tb.Failures()
	d.logEvents(d.reads.Check(now, n, lastErr, d.tb.Clock().Name()))
}

func (d *Daemon) edge(e pps.Edge) {
	d.ppsM.Edge(time.Now())
	d.logEvents(d.ppsM.Events())
	t, err := d.tb.FromClockAfter(e.Clock, e.Time, e.After)
	switch {
	case errors.Is(err, timebase.ErrWrongClock):
		d.log.Error("PPS edge on the wrong clock", "error", err)
		return
	case errors.Is(err, timebase.ErrBeforeStep):
		d.src.Stats().BeforeStep.Add(1)
		d.disc.PulseDropped()
		return
	case err != nil:
		return // the clock cannot be read (counted, reported once): no sample
	}
	d.logEvents(d.disc.Edge(t.Clock()))
}

// events hands the receiver's events to its monitor and the discipline
// (hw/gnss's types mapped onto the discipline's values).
func (d *Daemon) events(evs []gnss.Event, at time.Time) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case gnss.Report:
			d.log.Debug("gnss report", "gnss_time", e.UTCString(), "gnss_valid", e.Valid, "gnss_fix", e.Fix.String(),
				"gnss_sats", e.Sats, "gnss_sentence", e.Sentence, "gnss_first_ns", e.FirstAt.UnixNano())
			d.gnss.Report(e, at)
			ep := discipline.Epoch{UTC: e.Time, Leap60: e.Leap60, Valid: e.Valid, Dated: e.HasDate, Plausible: e.Implausible == "",
				TAcc: e.TAcc, Host: at}
			if arr, err := d.tb.FromRealtime(e.Arrival(at)); err == nil && e.HasDate {
				if cnow, ok := d.clockNow(); ok {
					ep.Arrival, ep.Now = arr.Clock(), cnow.Clock() // else no sample without the clock's own time
				}
			}
			d.do(d.disc.Epoch(ep))
		case gnss.Text:
			d.gnss.Text(e, at)
		case gnss.Version:
			d.gnss.Version(e, at)
		case gnss.Health:
			d.gnss.Health(e, at)
			// A receiver that says it is spoofed is not followed: the
			// clock holds over as when GNSS is lost (docs/clock.md).
			d.disc.Distrust("receiver reports spoofing", d.gnss.Spoofed())
		case gnss.TimePulse:
			if !e.QErrInvalid {
				d.disc.TimePulse(e.UTC(d.disc.GPSMinusUTC), e.QErr)
			}
		case gnss.LeapInfo:
			d.logEvents(d.disc.LeapInfo(at, d.nowOrLast().Clock(), int(e.CurrLS), e.CurrLSValid && e.CurrLSSource != 0,
				int(e.LSChange), time.Duration(e.TimeToLSEvent)*time.Second, e.TimeToValid))
		}
	}
	d.logEvents(d.gnss.Events())
}

// sdNotify tells the service manager (sd_notify(3)); outside systemd it
// does nothing.
func sdNotify(state string) { sddaemon.SdNotify(false, state) }

func (d *Daemon) logEvents(evs []event.Event) { event.Log(d.log, evs) }

// do applies what the discipline decided and logs what it said.
func (d *Daemon) do(a discipline.Action, evs []event.Event) {
	d.apply(a)
	d.logEvents(evs)
}
