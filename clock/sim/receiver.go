// Package sim models what sitegm cannot have in a test: a GNSS timing
// receiver with its PPS jitter, quantisation sawtooth, NMEA latency, faults
// and leap seconds (and, later, oscillators and networks). Models are pure:
// they compute what happens at what time and never sleep, so the same model
// drives gnss-sim in real time and `sitegm sim` in simulated time.
package sim

import (
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a receiver fault.
type FaultKind string

// Receiver faults (gnss-sim --fault KIND@START+LENGTH).
const (
	FaultOutage      FaultKind = "outage"       // no NMEA, no PPS (antenna cable cut, receiver unplugged)
	FaultNMEASilence FaultKind = "nmea-silence" // PPS continues, no sentences
	FaultPPSSilence  FaultKind = "pps-silence"  // sentences continue, no PPS
	FaultNoFix       FaultKind = "nofix"        // sentences say status V / quality 0; PPS keeps coming (free-running receiver)
	FaultGarbage     FaultKind = "garbage"      // random bytes before each burst
	FaultBadSum      FaultKind = "badsum"       // every sentence's checksum is wrong
	FaultJump        FaultKind = "jump"         // the receiver's time is off by Jump (spoofing, a firmware bug)
	// Receiver health, told in UBX (MON-HW/MON-RF, NAV-STATUS, TIM-SVIN):
	FaultAntenna  FaultKind = "antenna"  // antenna=open|short: no signal, so no fix; PPS free-runs
	FaultJamming  FaultKind = "jamming"  // jamming=LEVEL: jamming indicator LEVEL (0-255), the fix holds
	FaultSpoofing FaultKind = "spoofing" // the receiver flags spoofing (NAV-STATUS spoofDetState 2) and keeps its time
	FaultSurvey   FaultKind = "survey"   // survey=DURATION: a survey-in from START taking DURATION (LENGTH defaults to it)
)

// Fault is one fault over a window of host time relative to the start.
type Fault struct {
	Kind          FaultKind
	Start, Length time.Duration
	Jump          time.Duration // for FaultJump
	Antenna       string        // for FaultAntenna: "open" or "short"
	Level         int           // for FaultJamming: 0-255
}

// ParseFault reads KIND@START+LENGTH, with KIND jump=DUR for a jump.
func ParseFault(s string) (Fault, error) {
	kind, win, ok := strings.Cut(s, "@")
	if !ok {
		return Fault{}, fmt.Errorf("fault %q: want KIND@START+LENGTH", s)
	}
	var f Fault
	name, arg, hasArg := strings.Cut(kind, "=")
	f.Kind = FaultKind(name)
	var err error
	switch f.Kind {
	case FaultOutage, FaultNMEASilence, FaultPPSSilence, FaultNoFix, FaultGarbage, FaultBadSum, FaultSpoofing:
		if hasArg {
			return Fault{}, fmt.Errorf("fault %q: %s takes no value", s, name)
		}
	case FaultJump:
		if f.Jump, err = time.ParseDuration(arg); err != nil {
			return Fault{}, fmt.Errorf("fault %q: jump: want jump=DURATION", s)
		}
	case FaultAntenna:
		if arg != "open" && arg != "short" {
			return Fault{}, fmt.Errorf("fault %q: want antenna=open or antenna=short", s)
		}
		f.Antenna = arg
	case FaultJamming:
		if f.Level, err = strconv.Atoi(arg); err != nil || f.Level < 0 || f.Level > 255 {
			return Fault{}, fmt.Errorf("fault %q: want jamming=LEVEL, 0-255", s)
		}
	case FaultSurvey:
		if f.Length, err = time.ParseDuration(arg); err != nil || f.Length <= 0 {
			return Fault{}, fmt.Errorf("fault %q: want survey=DURATION", s)
		}
	default:
		return Fault{}, fmt.Errorf("fault %q: unknown kind %q (outage, nmea-silence, pps-silence, nofix, garbage, badsum, jump=DUR, antenna=open|short, jamming=LEVEL, spoofing, survey=DUR)", s, name)
	}
	st, ln, hasLen := strings.Cut(win, "+")
	if f.Start, err = time.ParseDuration(st); err != nil || f.Start < 0 {
		return Fault{}, fmt.Errorf("fault %q: bad start %q", s, st)
	}
	switch {
	case hasLen:
		if f.Length, err = time.ParseDuration(ln); err != nil || f.Length <= 0 {
			return Fault{}, fmt.Errorf("fault %q: bad length %q", s, ln)
		}
	case f.Kind != FaultSurvey:
		return Fault{}, fmt.Errorf("fault %q: want START+LENGTH", s)
	}
	return f, nil
}

// Leap is a leap second at the end of Day (UTC): Sign +1 inserts 23:59:60,
// -1 deletes 23:59:59.
type Leap struct {
	Day  time.Time
	Sign int
}

// ParseLeap reads YYYY-MM-DD[:+1|:-1].
func ParseLeap(s string) (Leap, error) {
	d, sign, _ := strings.Cut(s, ":")
	t, err := time.Parse("2006-01-02", d)
	if err != nil {
		return Leap{}, fmt.Errorf("leap %q: %v", s, err)
	}
	switch sign {
	case "", "+1":
		return Leap{Day: t, Sign: 1}, nil
	case "-1":
		return Leap{Day: t, Sign: -1}, nil
	}
	return Leap{}, fmt.Errorf("leap %q: sign must be +1 or -1", s)
}

// ReceiverConfig describes the simulated receiver against a reference
// ("host") clock. The receiver's notion of time runs at
//
//	true(h) = h + Offset + DriftPPM*1e-6 * (h - Start)
//
// on a continuous scale (no leap seconds); its UTC labels follow Leap.
type ReceiverConfig struct {
	Start    time.Time
	Offset   time.Duration
	DriftPPM float64
	// PPSJitter is the standard deviation of Gaussian noise on each PPS
	// timestamp (the capture's jitter).
	PPSJitter time.Duration
	// QErr is the amplitude of the pulse quantisation sawtooth: each pulse
	// leaves up to ±QErr from the ideal edge, and TIM-TP reports it.
	QErr time.Duration
	// Latency and LatencyJitter place the start of the NMEA burst for second
	// S after the edge of S: Latency + uniform[0, LatencyJitter).
	Latency, LatencyJitter time.Duration
	Faults                 []Fault
	Leap                   *Leap
	Sats, InView           int // default 9 and 12
	Seed                   int64
}

// Second is everything about one PPS edge and the sentences that name it.
type Second struct {
	N int // index since the start
	// Label is the UTC second the receiver gives this edge (normalised: a
	// leap second 23:59:60 is the next 00:00:00 with Leap60 set).
	Label  time.Time
	Leap60 bool
	// EdgeHost is the host time of the edge the receiver produces (its own
	// view, including any jump); TrueEdgeHost of the real second's edge.
	EdgeHost time.Time
	// PulseHost is where the quantised pulse really is; Stamp is what a
	// capture of it reads (PulseHost plus jitter).
	PulseHost, Stamp time.Time
	// QErrPS is TIM-TP's qErr for this pulse: ideal minus actual, in
	// picoseconds, so that ideal = actual + qErr.
	QErrPS int32
	// TrueMinusHost is the truth at the edge: true (continuous) time minus
	// host time.
	TrueMinusHost time.Duration
	// UTCMinusHost is true UTC minus host time at the edge (differs from
	// TrueMinusHost by the leap seconds inserted since the start).
	UTCMinusHost time.Duration
	Jump         time.Duration // receiver error in force
	PPS, NMEA    bool
	Valid        bool
	Garbage      bool
	BadSum       bool
	NMEAAt       time.Time // host time the burst for this label starts
	Faults       []FaultKind
	// Receiver health: Antenna "" (ok), "open" or "short"; Jamming the
	// jamming indicator (0 none); Spoofing flagged; a survey-in that is
	// Survey.Active or, once done, Survey.Valid.
	Antenna  string
	Jamming  int
	Spoofing bool
	Survey   SurveyState
}

// Truth is one edge as gnss-sim's --truth file writes it, a JSON line:
// what tests measure sitegm against. Times are host-clock Unix
// nanoseconds; "true" is the receiver's ideal time without its faults.
type Truth struct {
	N             int      `json:"n"`
	Label         string   `json:"label"` // the UTC second the receiver names (23:59:60 for a leap second)
	EdgeHostNS    int64    `json:"edge_host_ns"`
	StampHostNS   int64    `json:"stamp_host_ns"`
	TrueMinusHost int64    `json:"true_minus_host_ns"`
	UTCMinusHost  int64    `json:"utc_minus_host_ns"`
	JumpNS        int64    `json:"jump_ns"`
	QErrPS        int32    `json:"qerr_ps"`
	PPS           bool     `json:"pps"`
	NMEA          bool     `json:"nmea"`
	Valid         bool     `json:"valid"`
	Faults        []string `json:"faults,omitempty"`
}

// Truth is the second's truth line, its label written as label.
func (s Second) Truth(label string) Truth {
	t := Truth{N: s.N, Label: label, EdgeHostNS: s.EdgeHost.UnixNano(), StampHostNS: s.Stamp.UnixNano(),
		TrueMinusHost: int64(s.TrueMinusHost), UTCMinusHost: int64(s.UTCMinusHost), JumpNS: int64(s.Jump),
		QErrPS: s.QErrPS, PPS: s.PPS, NMEA: s.NMEA, Valid: s.Valid}
	for _, f := range s.Faults {
		t.Faults = append(t.Faults, string(f))
	}
	return t
}

// SurveyState is a simulated survey-in at one second.
type SurveyState struct {
	Active, Valid bool
	Elapsed       time.Duration
}

// Receiver steps through a simulated receiver's seconds.
type Receiver struct {
	cfg      ReceiverConfig
	rng      *rand.Rand
	drift    float64
	n        int
	lastEdge time.Time
	qPhase   float64
	leapAt   int64 // continuous Unix second of the leap instant (midnight after Day), 0 none
}

// NewReceiver starts a receiver; its first edge is at least half a second
// after cfg.Start.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.Sats == 0 {
		cfg.Sats = 9
	}
	if cfg.InView == 0 {
		cfg.InView = 12
	}
	r := &Receiver{cfg: cfg, rng: rand.New(rand.NewSource(cfg.Seed)), drift: cfg.DriftPPM * 1e-6}
	r.lastEdge = cfg.Start.Add(-500 * time.Millisecond)
	if cfg.Leap != nil {
		r.leapAt = cfg.Leap.Day.AddDate(0, 0, 1).Unix()
	}
	return r
}

// Inject adds a fault that starts at host time at (its Start is taken
// from at, relative to the receiver's start): gnss-sim's --control, for a
// test that must have a fault begin after a state it waits for, not at a
// time fixed before it knew how long that state would take to come.
func (r *Receiver) Inject(f Fault, at time.Time) Fault {
	f.Start = max(at.Sub(r.cfg.Start), 0)
	r.cfg.Faults = append(r.cfg.Faults, f)
	return f
}

// trueAt is the continuous true time at host time h. Arithmetic is done
// relative to Start in integer nanoseconds (a float64 of Unix nanoseconds
// would only resolve 256 ns).
func (r *Receiver) trueAt(h time.Time) time.Time {
	dt := h.Sub(r.cfg.Start)
	return r.cfg.Start.Add(dt + r.cfg.Offset + time.Duration(math.Round(r.drift*float64(dt))))
}

// hostAt inverts trueAt.
func (r *Receiver) hostAt(c time.Time) time.Time {
	dtTrue := c.Sub(r.cfg.Start) - r.cfg.Offset
	return r.cfg.Start.Add(time.Duration(math.Round(float64(dtTrue) / (1 + r.drift))))
}

func (r *Receiver) active(h time.Time) (kinds []FaultKind, jump time.Duration) {
	rel := h.Sub(r.cfg.Start)
	for _, f := range r.cfg.Faults {
		if f.Kind != FaultSurvey && rel >= f.Start && rel < f.Start+f.Length {
			kinds = append(kinds, f.Kind)
			if f.Kind == FaultJump {
				jump += f.Jump
			}
		}
	}
	return kinds, jump
}

// label turns a continuous second into the receiver's UTC label.
func (r *Receiver) label(n int64) (time.Time, bool) {
	if r.leapAt == 0 {
		return time.Unix(n, 0).UTC(), false
	}
	if r.cfg.Leap.Sign > 0 {
		switch {
		case n < r.leapAt:
			return time.Unix(n, 0).UTC(), false
		case n == r.leapAt:
			return time.Unix(n, 0).UTC(), true
		}
		return time.Unix(n-1, 0).UTC(), false
	}
	if n < r.leapAt-1 {
		return time.Unix(n, 0).UTC(), false
	}
	return time.Unix(n+1, 0).UTC(), false
}

// leapsBefore is how many seconds UTC has fallen behind the continuous
// scale at continuous second n.
func (r *Receiver) leapsBefore(n int64) int64 {
	if r.leapAt == 0 {
		return 0
	}
	if r.cfg.Leap.Sign > 0 && n > r.leapAt {
		return 1
	}
	if r.cfg.Leap.Sign < 0 && n >= r.leapAt-1 {
		return -1
	}
	return 0
}

// Next returns the next second.
func (r *Receiver) Next() Second {
	// The receiver's view is true time plus any jump in force; find its next
	// whole second after the last edge, re-evaluating the jump at the new
	// edge (it may start or end in between).
	_, jump := r.active(r.lastEdge.Add(time.Second))
	var n int64
	var edge time.Time
	for i := 0; i < 2; i++ {
		// The view at the last edge is a whole second give or take the
		// rounding of the inverse; the nanosecond of slack absorbs it.
		view := r.trueAt(r.lastEdge).Add(jump + time.Nanosecond)
		n = view.Unix() + 1
		edge = r.hostAt(time.Unix(n, 0).Add(-jump))
		if _, j2 := r.active(edge); j2 == jump {
			break
		} else {
			jump = j2
		}
	}
	r.lastEdge = edge
	kinds, _ := r.active(edge)
	s := Second{N: r.n, EdgeHost: edge, Jump: jump, PPS: true, NMEA: true, Valid: true, Faults: kinds}
	r.n++
	s.Label, s.Leap60 = r.label(n)
	trueEdge := r.trueAt(edge)
	s.TrueMinusHost = trueEdge.Sub(edge)
	s.UTCMinusHost = s.TrueMinusHost - time.Duration(r.leapsBefore(trueEdge.Add(500*time.Millisecond).Unix()))*time.Second
	for _, k := range kinds {
		switch k {
		case FaultOutage:
			s.PPS, s.NMEA = false, false
		case FaultNMEASilence:
			s.NMEA = false
		case FaultPPSSilence:
			s.PPS = false
		case FaultNoFix:
			s.Valid = false
		case FaultGarbage:
			s.Garbage = true
		case FaultBadSum:
			s.BadSum = true
		}
	}
	r.health(&s)
	var q time.Duration
	if r.cfg.QErr > 0 {
		// A sawtooth: the receiver's clock slips against the second by a
		// fraction of a tick each pulse.
		r.qPhase = math.Mod(r.qPhase+0.2371, 1)
		q = time.Duration((2*r.qPhase - 1) * float64(r.cfg.QErr))
	}
	s.PulseHost = edge.Add(q)
	s.QErrPS = int32(-q.Nanoseconds() * 1000)
	s.Stamp = s.PulseHost
	if r.cfg.PPSJitter > 0 {
		s.Stamp = s.Stamp.Add(time.Duration(r.rng.NormFloat64() * float64(r.cfg.PPSJitter)))
	}
	lat := r.cfg.Latency
	if r.cfg.LatencyJitter > 0 {
		lat += time.Duration(r.rng.Int63n(int64(r.cfg.LatencyJitter)))
	}
	s.NMEAAt = edge.Add(lat)
	return s
}

// health sets what the receiver says about itself at the edge: an open or
// shorted antenna leaves it without signal (no fix), jamming raises its
// indicator, a survey-in runs from its start for its duration and is
// valid after.
func (r *Receiver) health(s *Second) {
	rel := s.EdgeHost.Sub(r.cfg.Start)
	for _, f := range r.cfg.Faults {
		in := rel >= f.Start && rel < f.Start+f.Length
		switch {
		case f.Kind == FaultSurvey && rel >= f.Start:
			s.Survey = SurveyState{Active: in, Valid: !in, Elapsed: min(rel-f.Start, f.Length)}
		case !in:
		case f.Kind == FaultAntenna:
			s.Antenna, s.Valid = f.Antenna, false
		case f.Kind == FaultJamming:
			s.Jamming = max(s.Jamming, f.Level)
		case f.Kind == FaultSpoofing:
			s.Spoofing = true
		}
	}
}
