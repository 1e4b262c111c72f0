// Package discipline joins the clock's sans-I/O cores into one: PPS edges
// and receiver labels go in, clock adjustments and log events come out.
// The daemon drives it with real devices and sockets, `sitegm sim` with a
// simulated receiver and oscillator; both run exactly this code.
package discipline

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/clock/quality"
	"sitegm/clock/refclock"
	"sitegm/clock/servo"
	"sitegm/event"

	"github.com/facebook/time/ptp/protocol"
)

// Config of a discipline.
type Config struct {
	Osc       clock.Oscillator
	Timescale clock.Timescale
	// NMEAOnly: no PPS; samples come from sentence arrival minus NMEADelay.
	NMEAOnly  bool
	NMEADelay time.Duration
	// MeasNoise is the expected sample noise of the PPS source; 0 takes
	// PriorNoise.
	MeasNoise time.Duration
	// PPSDelay is how late the pulse comes where it is timestamped (the
	// antenna cable's delay plus any other known offset: gnss.cable_delay
	// + gnss.pps_offset); it is taken off every edge before pairing.
	PPSDelay time.Duration
	// LatencyLo/Hi: the window in which the sentences for second S start
	// after the edge of S (used until the clock is on GNSS time).
	LatencyLo, LatencyHi time.Duration
	// Servo is "kalman" (sitegm's) or "pi" (the linuxptp baseline).
	Servo                         string
	Holdover, HoldoverMaxError    time.Duration
	JumpThreshold, FollowJumps    time.Duration
	InitialFreq, InitialFreqSigma float64
	MaxFreq                       float64
	Leap                          *leap.Table
	// NoGNSS: no receiver is configured; the NTP upstreams lead from the
	// start (a site without an antenna).
	NoGNSS bool
	// Upstreams: NTP upstreams are configured. A first GNSS lock then
	// waits for their word (one agreeing selection), or for upstreamWait
	// without any.
	Upstreams bool
	// UpstreamMargin is the cross-check's slack (clock.upstream_margin);
	// UpstreamMaxError the bound within which a clock the upstreams
	// discipline counts as synchronized (clock.upstream_max_error).
	UpstreamMargin, UpstreamMaxError time.Duration
}

// PriorNoise is the sample noise to expect from a reference before the
// servo has measured it (it does within eight samples). It is a prior, so
// it errs on the wide side: 2 µs for every pulse source, though a timing
// receiver on a NIC's pin scatters by tens of ns, and 20 ms for sentence
// arrival alone; a narrow prior let a noisy pulse lock early and
// advertise a bound smaller than the clock's real error (docs/clock.md,
// "The PPS noise prior"; clock/sim TestPPSNoiseHonestWhateverItIs).
func PriorNoise(nmeaOnly bool) time.Duration {
	if nmeaOnly {
		return 20 * time.Millisecond
	}
	return 2 * time.Microsecond
}

// Label is a receiver epoch that names a UTC second.
type Label struct {
	UTC     time.Time // normalised (23:59:60 is the next 00:00:00 with Leap60)
	Leap60  bool
	Valid   bool
	Arrival time.Time // first sentence of the epoch, on the disciplined clock
	Now     time.Time // the clock's time now, when the resulting action applies
}

// Action is what the caller applies to the clock, in this order.
type Action struct {
	Step    time.Duration
	SetFreq bool
	Freq    float64 // ppb
	// SetLeap asks a clock that applies leap seconds itself (UTC system
	// clock) to insert (+1) or delete (-1) one at the end of the day, or to
	// clear (0).
	SetLeap bool
	Leap    int
	// SetSync tells a clock the kernel keeps for every program
	// (CLOCK_REALTIME) whether it is synchronized and how well
	// (clock.SyncReporter), each tick.
	SetSync bool
	Sync    clock.KernelSync
}

func (a *Action) merge(b Action) {
	a.Step += b.Step
	if b.SetFreq {
		a.SetFreq, a.Freq = true, b.Freq
	}
	if b.SetLeap {
		a.SetLeap, a.Leap = true, b.Leap
	}
	if b.SetSync {
		a.SetSync, a.Sync = true, b.Sync
	}
}

// Event is something to log (the vocabulary every core shares).
type Event = event.Event

// Discipline is the clock's brain.
type Discipline struct {
	cfg        Config
	pair       *refclock.Pairer
	srv        servo.Servo
	q          *quality.Machine
	leapTable  *leap.Table
	receiverLS bool // the receiver confirmed the current leap count
	// lastEpoch is the receiver's latest dated, plausible epoch and
	// lastEpochAt when it was read (host clock): ReceiverUTC.
	lastEpoch, lastEpochAt time.Time
	// leapRefused is the receiver leap information last refused (logged
	// once while it stays the same); LeapRefusals counts refusals.
	leapRefused       string
	LeapRefusals      uint64
	leapWarned        time.Time // the clock's UTC when leap_table_expired was last said
	leapWarnedExpired bool      // the last warning was of an expired table, not an expiring one
	pending           int       // leap flag last announced
	leapSet           int       // leap flag last given to a UTC clock
	// rearmAt: a step of CLOCK_REALTIME disarmed the kernel's leap second
	// (stepped is set until Tick does it); it is armed again from then.
	stepped    bool
	rearmAt    time.Time
	latency    time.Duration
	latencyOff bool
	problems   map[string]uint64
	// pulsesDropped: pulses dropped at a step (PulseDropped); the labels
	// that miss them are not problems.
	pulsesDropped int
	lastWarn      time.Time
	outliers      uint64
	// rejectRow counts the samples in a row the servo rejected before the
	// first lock (RestartAfter).
	rejectRow int
	steps     uint64
	lastStep  time.Duration
	events    event.List
	// priorDropped: the drift file's frequency was found wrong.
	priorDropped bool
	// byWindow: the pairer is pairing by the latency window against the
	// nearest edge (the clock's seconds and the receiver's disagree).
	byWindow bool
	// kleap follows the leap second armed on a UTC clock that applies it
	// itself (KernelLeap).
	kleap clock.LeapWatch
	// leapStepped: the midnight of a leap second sitegm stepped the
	// clock by because the kernel missed it.
	leapStepped time.Time
	// leapLookFailed: a look at the kernel failed and was said.
	leapLookFailed bool
	// recent are the last paired pulses, a ring (Status.Recent).
	recent  [RecentEdges]EdgeSample
	nRecent uint64
	// distrust holds why the receiver is not believed now (spoofing, its
	// own time accuracy); accBad: its accuracy is past the lock threshold.
	distrust map[string]bool
	accBad   bool
	lockErr  time.Duration
	// The NTP cross-check: consecutive fresh selections beyond and within
	// the bound, and whether the clock is held to disagree now.
	ntpBad, ntpGood int
	ntpDisagree     bool
	// The NTP servo while the upstreams lead (quality.Machine says which
	// reference does), their last selection, and GNSS samples in a row that agree
	// (or not) with a clock NTP leads.
	ntpSrv             *servo.NTP
	up                 Upstreams
	gnssAgree, gnssFar int
	gnssFarSaid        bool
	refChanges         uint64
	// unconfirmed: GNSS has not yet been seen to agree with the
	// upstreams (and they have not been given up on); since: the
	// discipline's start, on the clock.
	unconfirmed bool
	since       time.Time
}

// NTPDisagree says whether the cross-check holds the clock to disagree
// with the NTP upstreams now.
func (d *Discipline) NTPDisagree() bool { return d.ntpDisagree }

// ntpPersist fresh selections in a row decide the cross-check either way:
// one odd answer is not evidence.
const ntpPersist = 3

// ntpReason is the distrust and dispute reason of the cross-check.
const ntpReason = "GNSS disagrees with the NTP upstreams"

// CrossCheck compares the disciplined clock with the NTP upstreams'
// selection: offset is their combined time minus the clock, rootDist the
// half-width of the interval they know it within, margin the configured
// slack (clock.upstream_margin). Call it with fresh evidence only (a new
// answer since the last call).
//
// While GNSS disciplines the clock, a clock outside [offset - bound,
// offset + bound], bound = rootDist + the clock's own estimated error +
// margin, for 3 selections in a row is GNSS's time being wrong: an ERROR
// (gnss_ntp_disagree), GNSS is not followed (as the jump guard does), and
// since the clock is known to be off, it is not served as synchronized
// either (FREERUN: PTP class 52 or 248, NTP LI 3): holding over would
// serve a time known to be wrong as within specification. Back within
// half the bound for 3 selections (the upstreams were the ones wrong, and
// are right again) it is a NOTICE and GNSS is followed again.
func (d *Discipline) CrossCheck(offset, rootDist, margin time.Duration) []Event {
	est := d.q.EstError()
	if est < 0 || est > time.Hour || d.ntpDisagree {
		// Once it disagrees, the clock's own error (growing without a
		// reference) is no excuse: only the upstreams' interval clears it.
		est = 0
	}
	bound := rootDist + est + margin
	abs := offset
	if abs < 0 {
		abs = -abs
	}
	if abs <= bound && d.unconfirmed {
		d.confirm(event.Notice, fmt.Sprintf("GNSS agrees with the NTP upstreams (%v, within %v): it may lock", -offset, bound))
	}
	switch {
	case abs > bound:
		d.ntpBad, d.ntpGood = d.ntpBad+1, 0
	case abs < bound/2:
		d.ntpGood, d.ntpBad = d.ntpGood+1, 0
	default:
		d.ntpBad, d.ntpGood = 0, 0
	}
	switch {
	case !d.ntpDisagree && d.ntpBad >= ntpPersist && (d.q.Synchronized() || d.unconfirmed):
		d.ntpDisagree = true
		d.emit(slog.LevelError, "gnss_ntp_disagree",
			fmt.Sprintf("the clock GNSS disciplines is %v off the NTP upstreams, beyond their %v, its own %v and the margin %v: GNSS is not followed and the time is not served as synchronized",
				-offset, rootDist, est, margin),
			"upstream_offset", offset.String(), "upstream_root_distance", rootDist.String(), "bound", bound.String())
		d.Distrust(ntpReason, true)
		d.q.Dispute(ntpReason)
	case d.ntpDisagree && d.ntpGood >= ntpPersist:
		d.ntpDisagree = false
		d.emit(event.Notice, "gnss_ntp_disagree", fmt.Sprintf("the clock agrees with the NTP upstreams again (%v, within %v)", -offset, bound),
			"upstream_offset", offset.String(), "bound", bound.String())
		d.Distrust(ntpReason, false)
		d.q.Dispute("")
	}
	return d.take()
}

// New builds a discipline; now is the clock's time.
func New(cfg Config, now time.Time) *Discipline {
	if cfg.MeasNoise == 0 {
		cfg.MeasNoise = PriorNoise(cfg.NMEAOnly)
	}
	if cfg.Leap == nil {
		cfg.Leap = leap.Builtin()
	}
	if cfg.LatencyHi == 0 {
		cfg.LatencyHi = 990 * time.Millisecond
	}
	lockErr, srcErr := time.Microsecond, 100*time.Nanosecond
	if cfg.NMEAOnly {
		lockErr, srcErr = 50*time.Millisecond, 10*time.Millisecond
	}
	var srv servo.Servo
	if cfg.Servo == "pi" {
		srv = servo.NewPI(cfg.InitialFreq, cfg.MaxFreq)
	} else {
		srv = servo.NewKalman(servo.Config{
			Osc: cfg.Osc, MeasNoise: cfg.MeasNoise, MaxFreq: cfg.MaxFreq,
			InitialFreq: cfg.InitialFreq, InitialFreqSigma: cfg.InitialFreqSigma,
			JumpThreshold: cfg.JumpThreshold, FollowJumps: cfg.FollowJumps,
		})
	}
	d := &Discipline{
		cfg:       cfg,
		pair:      refclock.New(cfg.LatencyLo, cfg.LatencyHi),
		srv:       srv,
		leapTable: cfg.Leap,
		q: quality.New(quality.Config{Osc: cfg.Osc, Holdover: cfg.Holdover, HoldoverMaxError: cfg.HoldoverMaxError,
			LockError: lockErr, SourceError: srcErr, NMEAOnly: cfg.NMEAOnly, Timescale: cfg.Timescale,
			UpstreamMaxError: cfg.UpstreamMaxError}, now),
		problems: map[string]uint64{},
		distrust: map[string]bool{},
		lockErr:  lockErr,
		since:    now,
	}
	if cfg.Upstreams && !cfg.NoGNSS {
		d.unconfirmed = true
		d.q.Hold(unconfirmedReason)
	}
	if cfg.NoGNSS {
		d.startNTP(cfg.InitialFreq, cfg.InitialFreqSigma, true)
	}
	return d
}

func (d *Discipline) emit(level slog.Level, name, msg string, attrs ...any) {
	d.events.Emit(level, name, msg, attrs...)
}

func (d *Discipline) take() []Event { return d.events.Take() }

// Edge records a PPS edge at clock time t.
func (d *Discipline) Edge(t time.Time) []Event {
	// The second began PPSDelay before the pulse was stamped.
	if d.pair.Edge(t.Add(-d.cfg.PPSDelay)) {
		d.problem("extra_pulse")
	}
	return d.take()
}

// toScale puts a UTC label on the clock's timescale.
func (d *Discipline) toScale(utc time.Time, leap60 bool) time.Time {
	if d.cfg.Timescale == clock.UTC {
		return utc
	}
	return d.leapTable.UTCToTAI(utc, leap60)
}

// Label takes a receiver epoch.
func (d *Discipline) Label(l Label) (Action, []Event) {
	var a Action
	if !l.Valid {
		return a, d.take()
	}
	ntpLeads := d.q.Reference() == quality.RefNTP
	if len(d.distrust) > 0 && (!ntpLeads || d.distrustedBeyondNTP()) {
		d.problem("distrusted")
		return a, d.take()
	}
	if d.cfg.Timescale == clock.UTC && (l.Leap60 || d.leapTable.NearLeap(l.UTC, 2*time.Second)) {
		// A UTC clock repeats a second at a leap: no sample is unambiguous
		// around it.
		return a, d.take()
	}
	tru := d.toScale(l.UTC, l.Leap60)
	var s refclock.Sample
	if d.cfg.NMEAOnly {
		s = refclock.Sample{Local: l.Arrival.Add(-d.cfg.NMEADelay), True: tru, Latency: d.cfg.NMEADelay}
	} else {
		var r refclock.Reason
		aligned := d.srv.State() >= servo.StateTrack
		if ntpLeads {
			aligned = d.q.Synchronized() // within milliseconds of UTC
		}
		s, r = d.pair.Label(l.UTC, tru, l.Arrival, aligned)
		if r != refclock.OK {
			d.problem(r.String())
			return a, d.take()
		}
		d.pulsesDropped = 0
		d.watchLatency(s.Latency)
		d.watchSeconds(s)
	}
	d.recent[d.nRecent%RecentEdges] = EdgeSample{Second: s.True, Offset: s.Offset(), QErr: s.Correction, Corrected: s.QErr}
	d.nRecent++
	now := l.Now
	if now.IsZero() {
		now = l.Arrival
	}
	if ntpLeads {
		a.merge(d.gnssWhileNTP(s, now))
		return a, d.take()
	}
	sa := d.srv.Sample(s.Local, s.Offset(), now)
	d.note(sa)
	if sa.PriorDropped {
		d.priorDropped = true
		d.emit(slog.LevelWarn, "drift_distrusted", "the drift file's frequency disagrees with GNSS: ignored, learning the frequency afresh",
			"drift_freq_ppb", d.cfg.InitialFreq)
	}
	if sa.Step != 0 {
		d.pair.Shift(sa.Step)
	}
	a.merge(Action{Step: sa.Step, SetFreq: sa.SetFreq, Freq: sa.Freq})
	return a, d.take()
}

// Tick runs timeouts at clock time now (call it a few times a second).
func (d *Discipline) Tick(now time.Time) (Action, []Event) {
	var a Action
	// Only the leading reference's servo steers; GNSS's waits meanwhile
	// (Join takes it up again from where the clock is then).
	var srv interface {
		Tick(time.Time) servo.Action
		State() servo.State
		Estimate(time.Time) servo.Estimate
	} = d.srv
	if d.q.Reference() == quality.RefNTP {
		srv = d.ntpSrv
	}
	sa := srv.Tick(now)
	a.merge(Action{SetFreq: sa.SetFreq, Freq: sa.Freq})
	est := srv.Estimate(now)
	if tr, ok := d.q.Update(now, srv.State(), est); ok {
		d.transition(now, tr)
	}
	d.checkUnconfirmed(now)
	d.checkFallback(now)
	utc := now
	if d.cfg.Timescale == clock.TAI {
		utc, _ = d.leapTable.TAIToUTC(now)
	}
	d.checkLeapExpiry(utc)
	p := d.leapTable.Pending(utc)
	if utc.Before(d.leapStepped) {
		// sitegm stepped the clock back over an insertion the kernel
		// missed (KernelLeap): it reads the day's last second again, and
		// the leap is done, not to be armed (and inserted) once more.
		p = 0
	}
	if p != d.pending {
		switch {
		case p != 0:
			d.emit(slog.LevelWarn, "leap_scheduled", fmt.Sprintf("leap second (%+d) at the end of today, UTC", p), "leap", p)
		case d.pending != 0:
			d.emit(event.Notice, "leap_applied", "leap second done", "tai_utc", d.leapTable.Offset(utc))
		}
		d.pending = p
	}
	switch {
	case d.cfg.Timescale != clock.UTC:
	case d.stepped && d.leapSet != 0:
		// Linux forgets a scheduled leap second when CLOCK_REALTIME is
		// stepped (ntp_clear resets ntp_next_leap_sec, its state stays
		// TIME_INS, and nothing happens at midnight: a refinement step
		// after the arming lost the kernel lab's inserted second). Its
		// once-a-second state machine must see the flag cleared, then
		// set: clear now, arm again 1.5 s later.
		a.SetLeap, a.Leap = true, 0
		d.leapSet, d.rearmAt = 0, now.Add(1500*time.Millisecond)
	case d.pending != d.leapSet && !now.Before(d.rearmAt):
		a.SetLeap, a.Leap = true, d.pending
		d.leapSet = d.pending
		if d.pending != 0 {
			d.kleap.Arm(now, d.pending)
		} else {
			d.kleap.Cleared(now)
		}
	}
	d.stepped = false
	if len(d.problems) > 0 && now.Sub(d.lastWarn) >= time.Minute {
		d.lastWarn = now
		attrs := []any{}
		for k, n := range d.problems {
			attrs = append(attrs, k, n)
		}
		hint := ""
		if d.problems["ambiguous"] > 0 {
			hint = " (two PPS edges fit the latency window: set gnss.nmea_latency narrower than a second)"
		}
		d.emit(slog.LevelWarn, "pairing_problems", "PPS/NMEA pairing rejected labels"+hint, attrs...)
		clear(d.problems)
	}
	a.SetSync, a.Sync = d.cfg.Timescale == clock.UTC, d.q.Kernel()
	return a, d.take()
}

// LeapExpiryNotice is how long before the leap table's expiry sitegm
// starts saying so: four weeks, time for a site without internet to get
// a tzdata update or a leap-seconds.list onto the box.
const LeapExpiryNotice = 28 * 24 * time.Hour

// checkLeapExpiry warns, once a day of the clock's own time, that the
// leap table expires within LeapExpiryNotice, then that it expired: the
// time is still served, but a leap second announced after the expiry
// would be missed unless the receiver reports it.
func (d *Discipline) checkLeapExpiry(utc time.Time) {
	t := d.leapTable
	soon := !t.Expires.IsZero() && t.Expires.Sub(utc) < LeapExpiryNotice
	expired := t.Expired(utc)
	if !(expired || soon) || (!d.leapWarned.IsZero() && utc.Sub(d.leapWarned).Abs() < 24*time.Hour && d.leapWarnedExpired == expired) {
		return
	}
	d.leapWarned, d.leapWarnedExpired = utc, expired
	exp := "unknown"
	if !t.Expires.IsZero() {
		exp = t.Expires.Format("2006-01-02")
	}
	if !t.Expired(utc) {
		d.emit(slog.LevelWarn, "leap_table_expiring", fmt.Sprintf("leap second table expires in %d days: update tzdata or gnss.leapfile (leap-seconds.list, docs/clock.md)",
			int(t.Expires.Sub(utc).Hours()/24)), "leap_source", t.Source, "expires", exp)
		return
	}
	d.emit(slog.LevelWarn, "leap_table_expired", "leap second table expired: update tzdata or gnss.leapfile (leap-seconds.list, docs/clock.md); "+
		"UTC is still served right, but unless the receiver confirms the leap second count PTP says its time is not traceable", "leap_source", d.leapTable.Source, "expired", exp)
}

func (d *Discipline) transition(now time.Time, tr quality.Transition) {
	level := event.Notice
	if tr.To == quality.Holdover || (tr.To == quality.Freerun && d.q.EverLocked()) {
		level = slog.LevelWarn
	}
	est := d.q.Estimate()
	attrs := []any{"clock_state", string(tr.To), "clock_prev_state", string(tr.From), "reason", tr.Reason,
		"clock_class", d.q.ClockClass(), "held", tr.Held.Round(time.Second).String()}
	if e := d.q.EstError(); e != time.Duration(math.MaxInt64) {
		attrs = append(attrs, "est_error_ns", e.Nanoseconds()) // left out while not known
	}
	d.emit(level, "clock_state", fmt.Sprintf("clock %s -> %s: %s", tr.From, tr.To, tr.Reason), attrs...)
	switch {
	case tr.To == quality.Holdover:
		d.emit(slog.LevelWarn, "holdover_entered", "holdover: running on the "+d.cfg.Osc.Name+" oscillator",
			"holdover_limit", d.cfg.Holdover.String(), "freq_ppb", est.Freq)
	case tr.From == quality.Holdover:
		d.emit(level, "holdover_left", "holdover ended: "+tr.Reason, "holdover_elapsed", tr.Held.Round(time.Second).String())
	}
}

// Resync asks the servo to accept GNSS time as it is at the next sample.
func (d *Discipline) Resync() { d.srv.Resync() }

// DriftDistrusted tells whether the drift file's frequency disagreed with
// the reference and was dropped (the daemon then sets the file aside).
func (d *Discipline) DriftDistrusted() bool { return d.priorDropped }

// Quality is the quality machine (for advertised values).
func (d *Discipline) Quality() *quality.Machine { return d.q }

// ReceiverLS tells whether the receiver confirmed the UTC offset.
func (d *Discipline) ReceiverLS() bool { return d.receiverLS }

// LeapKnown reports whether TAI-UTC is known at utc: from a current leap
// second table or from the receiver's count, and no receiver contradicting
// the table (what PTP's timeTraceable needs, quality.TimeProperties).
func (d *Discipline) LeapKnown(utc time.Time) bool {
	return d.leapRefused == "" && (d.receiverLS || !d.leapTable.Expired(utc))
}

// Status is a snapshot for status output.
type Status struct {
	Reference         quality.Reference
	ReferenceChanges  uint64
	State             quality.State
	Since             time.Time
	ServoState        servo.State
	ClockClass        protocol.ClockClass
	EstError          time.Duration
	Estimate          servo.Estimate
	HoldoverElapsed   time.Duration
	HoldoverRemaining time.Duration
	Pairing           refclock.Stats
	Outliers, Steps   uint64
	Latency           time.Duration
	// Recent are the last paired pulses, oldest first.
	Recent []EdgeSample
}

// RecentEdges is how many paired pulses Status keeps: enough that a
// reader polling the status every second misses none.
const RecentEdges = 8

// EdgeSample is one pulse paired with its second: the clock's offset from
// it as measured (before the servo acts on it, after the known delays and
// the receiver's sawtooth correction), and that correction.
type EdgeSample struct {
	Second    time.Time // the second the pulse marked, on the clock's timescale
	Offset    time.Duration
	QErr      time.Duration
	Corrected bool // a TIM-TP qErr was applied
}

// recentEdges is the ring oldest first.
func (d *Discipline) recentEdges() []EdgeSample {
	n := min(d.nRecent, RecentEdges)
	out := make([]EdgeSample, 0, n)
	for i := d.nRecent - n; i < d.nRecent; i++ {
		out = append(out, d.recent[i%RecentEdges])
	}
	return out
}

// Status reports the discipline at clock time now.
func (d *Discipline) Status(now time.Time) Status {
	st, est := d.srv.State(), d.srv.Estimate(now)
	if d.q.Reference() == quality.RefNTP {
		st, est = d.ntpSrv.State(), d.ntpSrv.Estimate(now)
	}
	return Status{
		Reference: d.q.Reference(), ReferenceChanges: d.refChanges,
		State: d.q.State(), Since: d.q.Since(), ServoState: st, ClockClass: d.q.ClockClass(),
		EstError: d.q.EstError(), Estimate: est,
		HoldoverElapsed: d.q.HoldoverElapsed(now), HoldoverRemaining: d.q.HoldoverRemaining(now),
		Pairing: d.pair.Stats, Outliers: d.outliers, Steps: d.steps, Latency: d.latency,
		Recent: d.recentEdges(),
	}
}
