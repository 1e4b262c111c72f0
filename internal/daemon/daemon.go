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
	"sitegm/clock/leap"
	"sitegm/clock/quality"
	"sitegm/clock/timebase"
	"sitegm/hw/caps"
	"sitegm/hw/claim"
	"sitegm/hw/gnss"
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
	// lastNow is the disciplined clock's last good read; clockFail since
	// when reads fail (zero: they do not), and how many failures were
	// reported already.
	lastNow               timebase.Instant
	clockFail, lastFail   time.Time
	failSeen, failAtStart uint64
	// drift file
	lastDrift     time.Time
	driftSetAside bool
	// the receiver's latest dated, plausible epoch and when it came (host)
	lastEpoch, lastEpochAt time.Time
	// leap table expiry warning, once a day
	leapWarned   time.Time
	slave        *timebase.Slave // CLOCK_REALTIME on the PHC (sync_system)
	ptps         []*ptpSlot
	ntps         []*ntpSlot
	ntpView      atomic.Pointer[ntpnet.View]
	ntpPrecision int8
	gmLatest     atomic.Pointer[gmPair]
	servers      sync.WaitGroup
	// claims: what this daemon serves alone (config.Claims)
	claims claim.Set
	// caps: the capabilities kept (NarrowCapabilities)
	caps         caps.Set
	capsNarrowed bool
	// status, readiness, reload
	started  time.Time
	ready    atomic.Bool
	status   status.Book
	rateSeen [2]uint64 // NTP KoD and rate drops already reported
	rejected status.RejectedBook
	// watch: followers, monitored hosts, history ([http] page, metrics)
	watch   *watch.Watch
	trusted atomic.Bool // the clock knows the time (LOCKED or HOLDOVER), for the monitors
	// upstreams: the NTP servers of the cross-check, and their last selection
	upstreams *upstream.Set
	selection upstream.Selection
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
	src, err := ppsSource(cfg, tb)
	if err != nil {
		return nil, fmt.Errorf("gnss.pps: %w", err)
	}
	d = &Daemon{
		cfg: cfg, log: log, tb: tb, slave: slave, table: table, src: src, osc: osc, claims: claims,
		dec:  gnss.NewDecoder(gnss.Options{DateFloor: floor}),
		gnss: gnss.NewMonitor(log, cfg.GNSS.Device, time.Now()),
		ppsM: pps.NewMonitor(log, cfg.GNSS.PPS.String()),
	}
	now0, err := tb.Now()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPHC, err) // waited for, like a PHC not there yet
	}
	d.lastNow = now0
	d.gnss.SetHealth(gnss.HealthConfig{JammingThreshold: cfg.GNSS.JammingThreshold})
	d.disc = discipline.New(d.disciplineConfig(), now0.Clock())
	d.watch = watch.New(cfg, time.Now(), log)
	var ups []upstream.Config
	for _, u := range cfg.Upstream {
		ups = append(ups, upstream.Config{Name: u.Server, MinPoll: u.MinPoll, MaxPoll: u.MaxPoll, IBurst: u.IBurst, Prefer: u.Prefer})
	}
	utc0, _ := now0.UTC()
	d.upstreams = upstream.NewSet(ups, utc0)
	for _, p := range cfg.PTP {
		d.ptps = append(d.ptps, &ptpSlot{cfg: withoutExpect(p)})
	}
	for _, n := range cfg.NTP {
		d.ntps = append(d.ntps, &ntpSlot{cfg: withoutExpectNTP(n)})
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
	d.checkLeapExpiry(time.Now())
	d.checkUnitAllow()
	d.logWarnings(d.cfg.Warnings)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks, links, edges, done := d.startInputs(ctx)
	d.started = time.Now()
	d.ntpPrecision = ntp.Precision(clk.Now)
	d.publishGM()
	d.publishNTP()
	defer d.servers.Wait()
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
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(signals)

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
		case <-minute.C:
			d.reportRateLimited(d.NTPStatuses())
			if s := d.status.Last(); s != nil {
				d.reportRejected(s)
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
	reader := &serial.Reader{Device: d.cfg.GNSS.Device, Baud: d.cfg.GNSS.Baud}
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
		d.runPPS(ctx, edges)
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
	if cnow, ok := d.clockNow(); ok {
		a, evs := d.disc.Tick(cnow.Clock())
		d.apply(a)
		d.logEvents(evs)
		d.publishGM()
	}
	q := d.disc.Quality().State()
	d.trusted.Store(q == quality.Locked || q == quality.Holdover)
	d.publishNTP()
	d.saveDrift(false)
	d.checkLeapExpiry(now)
	d.reportClockReads(now)
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
	t, err := d.tb.FromClock(e.Clock, e.Time)
	if errors.Is(err, timebase.ErrWrongClock) {
		d.log.Error("PPS edge on the wrong clock", "error", err)
		return
	}
	if err != nil {
		return // the clock cannot be read (counted, reported once): no sample
	}
	d.logEvents(d.disc.Edge(t.Clock()))
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
			if e.Valid {
				d.disc.SourceAccuracy(e.TAcc)
			}
			if e.HasDate {
				arrival := e.FirstAt
				if arrival.IsZero() {
					arrival = at
				}
				arr, err := d.tb.FromRealtime(arrival)
				cnow, ok := d.clockNow()
				if err != nil || !ok {
					continue // no sample without the clock's own time for it
				}
				a, evs := d.disc.Label(discipline.Label{UTC: e.Time, Leap60: e.Leap60, Valid: e.Valid,
					Arrival: arr.Clock(), Now: cnow.Clock()})
				d.apply(a)
				d.logEvents(evs)
			}
		case gnss.Text:
			d.gnss.Text(e, at)
		case gnss.Health:
			d.gnss.Health(e, at)
			// A receiver that says it is spoofed is not followed: the
			// clock holds over as when GNSS is lost (docs/clock.md).
			d.disc.Distrust("receiver reports spoofing", d.gnss.Spoofed())
		case gnss.TimePulse:
			if !e.QErrInvalid {
				d.disc.TimePulse(e.UTC(d.gpsMinusUTC), e.QErr)
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

// gpsMinusUTC is GPS-UTC in seconds at utc (TAI-UTC - 19 s).
func (d *Daemon) gpsMinusUTC(utc time.Time) int { return d.table.Offset(utc) + leap.GPSMinusTAI }

func (d *Daemon) logEvents(evs []discipline.Event) {
	for _, e := range evs {
		d.log.Log(context.Background(), e.Level, e.Msg, append([]any{"event", e.Name}, e.Attrs...)...)
	}
}
