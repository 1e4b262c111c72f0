// Package servo steers the disciplined clock from (local time, offset)
// samples. Kalman is sitegm's servo; PI wraps facebook/time's port of
// linuxptp's PI servo as the baseline it is measured against, behind the
// same interface, so the simulation runs both on identical input.
package servo

import "time"

// State of a servo.
type State uint8

// Servo states.
const (
	StateInit     State = iota // no sample yet
	StateStart                 // acquiring: stepping and estimating frequency
	StateTrack                 // following the reference
	StateHoldover              // no samples: keeping the last frequency (and drift)
	StateGuard                 // the reference jumped: not followed, holding over
)

func (s State) String() string {
	return [...]string{"init", "start", "track", "holdover", "guard"}[s]
}

// Note tells the caller about something worth a log line.
type Note uint8

// Notes.
const (
	NoteNone       Note = iota
	NoteStepped         // the clock was stepped (start, operator, followed jump)
	NoteOutlier         // a sample was rejected
	NoteJump            // the reference disagrees persistently: entered guard
	NoteJumpOver        // the reference agrees again: left guard
	NoteJumpFollow      // a persistent new time was followed (configuration or operator)
)

func (n Note) String() string {
	return [...]string{"", "stepped", "outlier", "jump", "jump_over", "jump_followed"}[n]
}

// Action is what the caller applies to the clock.
type Action struct {
	Step    time.Duration // step the clock by this first (0: none)
	Freq    float64       // then set this frequency adjustment, ppb
	SetFreq bool
	Note    Note
	// Offset is the sample's offset that caused a note (jump size etc.).
	Offset time.Duration
	// PriorDropped: the initial frequency (the drift file's) disagreed
	// with the samples and was dropped; the servo learns it afresh.
	PriorDropped bool
}

// Estimate is the servo's view of the clock at a time.
type Estimate struct {
	Offset      time.Duration // clock minus reference
	OffsetSigma time.Duration // one standard deviation
	Freq        float64       // frequency adjustment that cancels the oscillator's error, ppb
	FreqSigma   float64       // ppb
	DriftPPBDay float64       // estimated frequency drift, ppb per day
	MeasNoise   time.Duration // estimated standard deviation of the samples
	// NoiseMeasured: MeasNoise comes from the samples, not from the
	// configured prior.
	NoiseMeasured bool
	SinceSample   time.Duration // time since the last accepted sample
}

// Servo is what the discipline drives.
type Servo interface {
	// Sample takes one measurement: at local clock time at the clock was
	// offset ahead of the reference. now is the clock's time as the sample
	// is handled, when the returned action takes effect (later than at: the
	// receiver's label comes after its edge).
	Sample(at time.Time, offset time.Duration, now time.Time) Action
	// Tick is called without a sample (about once a second); in holdover
	// it keeps the frequency model running.
	Tick(now time.Time) Action
	// Resync is an operator's request to accept the reference as it is
	// (step to it at the next sample).
	Resync()
	// Restart begins the start again at the next sample: the phase from
	// it (a step), the frequency learned afresh from the wide prior. For
	// a servo whose start went wrong (a jump seen before the clock ever
	// locked says the start learned a wrong second or frequency).
	Restart()
	State() State
	Estimate(now time.Time) Estimate
}
