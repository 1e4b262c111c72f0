package gnss

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"sitegm/event"
	"sitegm/hw/serial"
)

// State is what the operator needs to know about the receiver.
type State string

// Receiver states, in the order things go right.
const (
	StateAbsent State = "absent" // the device cannot be opened or was unplugged
	StateSilent State = "silent" // open, but no time sentences (wrong baud, wrong port, receiver booting)
	StateNoFix  State = "nofix"  // time sentences saying the receiver has no fix
	StateFix    State = "fix"    // valid, dated time reports
)

// Silence after which an open receiver is "silent" and a fix is "lost":
// receivers send every second, three missed epochs is not jitter.
const gnssSilence = 3 * time.Second

// Hysteresis of the fix state, so that a receiver whose fix flaps every
// second does not log two lines a second: a fix is gained on fixConfirm
// usable reports in a row, and lost when no usable report came for
// fixHold. Flapping itself is summed up once a minute (gnss_fix_unstable)
// when the reports changed between usable and not more than fixFlapsOK
// times in it.
const (
	fixConfirm = 2
	fixHold    = 3 * time.Second
	fixFlapsOK = 4
)

// Snapshot is the receiver's state for status output.
type Snapshot struct {
	Device     string    `json:"device"`
	State      State     `json:"state"`
	Fix        string    `json:"fix"`
	Sats       int       `json:"sats"`
	InView     int       `json:"in_view"`
	LastTime   string    `json:"last_time,omitempty"` // UTC of the last report
	LastReport time.Time `json:"-"`
	Since      time.Time `json:"-"` // when State was entered
	Reports    uint64    `json:"reports"`
	Valid      uint64    `json:"valid_reports"`
	Rejected   uint64    `json:"rejected_bytes"`
	LinkErr    string    `json:"link_error,omitempty"`
	// Implausible counts reports whose date cannot be right (see
	// Report.Implausible).
	Implausible uint64 `json:"implausible_dates"`
	// What the receiver says of its condition (UBX; "unknown" when it
	// said nothing): antenna, interference, spoofing, survey-in, and its
	// own time accuracy estimate.
	Antenna   string         `json:"antenna"`
	Jamming   string         `json:"jamming"`
	JamInd    int            `json:"jamming_indicator"` // 0..255, -1 unknown
	Spoofing  string         `json:"spoofing"`
	Survey    *SurveySummary `json:"survey,omitempty"`
	TimeAccNS int64          `json:"time_accuracy_ns"` // 0 unknown
	Conflicts uint64         `json:"conflicts"`        // epochs whose UBX and NMEA disagreed
	// Version is what the receiver said it is (UBX MON-VER), nil when it
	// did not say.
	Version    *Version `json:"version,omitempty"`
	lastSurvey time.Time
}

// SurveySummary is the survey-in's progress for the status.
type SurveySummary struct {
	Active       bool    `json:"active"`
	Valid        bool    `json:"valid"`
	DurationS    float64 `json:"duration_s"`
	MeanAccM     float64 `json:"mean_accuracy_m"`
	Observations uint32  `json:"observations"`
}

// HealthConfig tunes what the monitor calls interference.
type HealthConfig struct {
	// JammingThreshold is the jamming indicator (0..255) above which
	// interference is reported; the receiver's own warning or critical
	// verdict counts whatever the indicator says. 0 means 100.
	JammingThreshold int
}

// Monitor turns receiver events into one state and returns each change
// as an event (Events; the daemon logs them). It is driven by explicit
// inputs (no clock reads).
type Monitor struct {
	events  event.List
	s       Snapshot
	linkUp  bool
	lastAny time.Time // last report of any kind
	quietOK bool      // the current silence was already logged
	texts   map[string]time.Time
	// fix hysteresis and flapping
	usableRun  int
	lastUsable time.Time
	lastWasOK  bool
	flips      int
	minuteFrom time.Time
	implSeen   uint64 // Implausible already summarised
	implWhy    string
	health     HealthConfig
	jammed     bool
	conflSeen  uint64
	conflWhy   string
	// said is when the receiver last said what it is (unix ns, 0:
	// never), read by the serial reader's goroutine (IdentifiedSince).
	said atomic.Int64
}

// SetHealth sets the interference threshold.
func (m *Monitor) SetHealth(c HealthConfig) {
	if c.JammingThreshold <= 0 {
		c.JammingThreshold = 100
	}
	m.health = c
}

// Spoofed reports whether the receiver says it is being spoofed now.
func (m *Monitor) Spoofed() bool {
	return m.s.Spoofing == SpoofingIndicated.String() || m.s.Spoofing == SpoofingAffirmed.String()
}

// surveyEvery is how often a running survey-in's progress is logged.
const surveyEvery = 5 * time.Minute

// Health records what the receiver says of its condition, and logs each
// change: the antenna opening or shorting (WARNING) and coming back
// (NOTICE), interference beyond the threshold, spoofing (ERROR: the clock
// holds over, see the daemon), and the survey-in (started, progress every
// five minutes, done with its accuracy).
func (m *Monitor) Health(h Health, now time.Time) {
	if h.Antenna != AntennaUnknown && h.Antenna.String() != m.s.Antenna {
		prev := m.s.Antenna
		m.s.Antenna = h.Antenna.String()
		switch {
		case h.Antenna != AntennaOK:
			m.event(slog.LevelWarn, "gnss_antenna", "GNSS antenna "+strings.ToUpper(m.s.Antenna)+": check the cable and the antenna",
				"gnss_antenna", m.s.Antenna, "was", prev, "source", h.Source)
		case prev != "unknown":
			m.event(event.Notice, "gnss_antenna", "GNSS antenna OK", "gnss_antenna", m.s.Antenna, "was", prev, "source", h.Source)
		}
	}
	if h.HasJam {
		m.s.Jamming = h.Jamming.String()
	}
	if h.JamInd >= 0 {
		m.s.JamInd = h.JamInd
	}
	if h.HasJam || h.JamInd >= 0 {
		thr := m.health.JammingThreshold
		jammed := h.Jamming >= JammingWarning || m.s.JamInd > thr
		// Clear below 80 % of the threshold, so a level hovering at it
		// does not log a line a second.
		if m.jammed && !jammed && h.Jamming < JammingWarning && m.s.JamInd > thr*8/10 {
			jammed = true
		}
		if jammed != m.jammed {
			m.jammed = jammed
			if jammed {
				m.event(slog.LevelWarn, "gnss_jamming", "GNSS interference: the receiver reports jamming",
					"gnss_jamming", m.s.Jamming, "jamming_indicator", m.s.JamInd, "threshold", thr, "source", h.Source)
			} else {
				m.event(event.Notice, "gnss_jamming", "GNSS interference over",
					"gnss_jamming", m.s.Jamming, "jamming_indicator", m.s.JamInd, "source", h.Source)
			}
		}
	}
	if h.HasSpoof {
		was := m.Spoofed()
		m.s.Spoofing = h.Spoofing.String()
		switch is := m.Spoofed(); {
		case is && !was:
			m.event(slog.LevelError, "gnss_spoofing", "GNSS spoofing detected by the receiver: its time is not followed, the clock holds over",
				"gnss_spoofing", m.s.Spoofing, "source", h.Source)
		case !is && was:
			m.event(event.Notice, "gnss_spoofing", "GNSS spoofing no longer indicated", "gnss_spoofing", m.s.Spoofing, "source", h.Source)
		}
	}
	if sv := h.Survey; sv != nil {
		prev := m.s.Survey
		m.s.Survey = &SurveySummary{Active: sv.Active, Valid: sv.Valid, DurationS: sv.Duration.Seconds(), MeanAccM: sv.MeanAcc, Observations: sv.Observations}
		attrs := []any{"survey_duration", sv.Duration.String(), "survey_accuracy_m", fmt.Sprintf("%.3f", sv.MeanAcc), "source", h.Source}
		switch {
		case sv.Active && (prev == nil || !prev.Active):
			m.s.lastSurvey = now
			m.event(event.Notice, "gnss_survey", "GNSS survey-in started", append(attrs, "survey", "started")...)
		case sv.Active && now.Sub(m.s.lastSurvey) >= surveyEvery:
			m.s.lastSurvey = now
			m.event(slog.LevelInfo, "gnss_survey", "GNSS survey-in in progress", append(attrs, "survey", "progress")...)
		case sv.Valid && !sv.Active && (prev == nil || prev.Active || !prev.Valid):
			m.event(event.Notice, "gnss_survey", "GNSS survey-in done: the receiver is in timing mode on its surveyed position",
				append(attrs, "survey", "done")...)
		}
	}
}

// NewMonitor starts with the receiver absent.
func NewMonitor(device string, now time.Time) *Monitor {
	m := &Monitor{s: Snapshot{Device: device, State: StateAbsent, Fix: "unknown", Sats: -1, InView: -1, Since: now,
		Antenna: "unknown", Jamming: "unknown", JamInd: -1, Spoofing: "unknown"}, texts: map[string]time.Time{}}
	m.SetHealth(HealthConfig{})
	return m
}

// Snapshot returns the current state.
func (m *Monitor) Snapshot() Snapshot { return m.s }

// Events returns and forgets what changed since the last call.
func (m *Monitor) Events() []event.Event { return m.events.Take() }

func (m *Monitor) event(level slog.Level, name, msg string, attrs ...any) {
	m.events.Emit(level, name, msg, append([]any{"gnss_device", m.s.Device, "gnss_state", string(m.s.State)}, attrs...)...)
}

func (m *Monitor) enter(st State, now time.Time) (prev State, held time.Duration) {
	prev, held = m.s.State, now.Sub(m.s.Since)
	m.s.State, m.s.Since = st, now
	return prev, held
}

// Link records the stream going up or down.
func (m *Monitor) Link(l serial.Link, now time.Time) {
	if l.Up == m.linkUp && (l.Up || m.s.State == StateAbsent) {
		return
	}
	m.linkUp = l.Up
	if l.Up {
		m.s.LinkErr = ""
		m.lastAny = time.Time{}
		m.quietOK = false
		prev, held := m.enter(StateSilent, now)
		if prev == StateAbsent && !m.s.LastReport.IsZero() {
			m.event(event.Notice, "receiver_back", "GNSS receiver back", "gone_for", held.Round(time.Second).String())
		} else {
			m.event(event.Notice, "receiver_open", "GNSS receiver open")
		}
		return
	}
	if l.Err != nil {
		m.s.LinkErr = l.Err.Error()
	}
	prev, _ := m.enter(StateAbsent, now)
	m.s.Fix, m.s.Sats, m.s.InView = "none", -1, -1
	if prev == StateFix {
		m.event(slog.LevelWarn, "gnss_fix_lost", "GNSS fix lost: receiver gone", "reason", "receiver gone")
	}
	m.event(slog.LevelWarn, "receiver_gone", "GNSS receiver gone; retrying", "error", m.s.LinkErr)
}

// Report records one epoch.
func (m *Monitor) Report(r Report, now time.Time) {
	m.s.Reports++
	m.lastAny = now
	m.quietOK = false
	m.s.LastReport = now
	m.s.Sats, m.s.InView, m.s.Fix = r.Sats, r.InView, r.Fix.String()
	if r.TAcc > 0 {
		m.s.TimeAccNS = r.TAcc.Nanoseconds()
	}
	if r.Conflict != "" {
		m.s.Conflicts++
		m.conflWhy = r.Conflict
	}
	if r.HasDate {
		m.s.LastTime = r.UTCString()
	}
	usable := r.Valid && r.HasDate
	if r.Implausible != "" {
		m.s.Implausible++
		m.implWhy = r.Implausible
	}
	if usable {
		m.s.Valid++
		m.usableRun++
		m.lastUsable = now
	} else {
		m.usableRun = 0
	}
	if usable != m.lastWasOK {
		m.flips++
		m.lastWasOK = usable
	}
	if r.Rollover && usable && m.s.State != StateFix {
		m.event(slog.LevelWarn, "gnss_week_rollover", "GNSS date was 1024 weeks early (GPS week rollover); corrected",
			"gnss_time", r.UTCString())
	}
	switch {
	case usable && m.s.State != StateFix && m.usableRun >= fixConfirm:
		m.enter(StateFix, now)
		m.event(event.Notice, "gnss_fix_gained", "GNSS fix gained",
			"gnss_fix", r.Fix.String(), "gnss_sats", r.Sats, "gnss_time", r.UTCString(), "gnss_talker", r.Talker)
	case !usable && m.s.State == StateFix && now.Sub(m.lastUsable) >= fixHold:
		m.enter(StateNoFix, now)
		reason := "receiver reports no fix"
		switch {
		case r.Implausible != "":
			reason = "implausible date: " + r.Implausible
		case !r.HasDate:
			reason = "no date"
		}
		m.event(slog.LevelWarn, "gnss_fix_lost", "GNSS fix lost", "reason", reason, "gnss_sats", r.Sats)
	case !usable && m.s.State == StateSilent:
		m.enter(StateNoFix, now)
		m.event(event.Notice, "gnss_no_fix", "GNSS receiver talking, no fix yet", "gnss_sats", r.Sats)
	}
}

// Version keeps what the receiver says it is, and logs it when it is new
// (at start, and after a receiver was swapped).
func (m *Monitor) Version(v Version, now time.Time) {
	m.said.Store(now.UnixNano())
	if m.s.Version != nil && m.s.Version.String() == v.String() {
		return
	}
	m.s.Version = &v
	m.events.Emit(slog.LevelInfo, "gnss_receiver", "GNSS receiver: "+v.String(), "gnss_module", v.Module, "gnss_firmware", v.Firmware,
		"gnss_hardware", v.Hardware, "gnss_protocol", v.Protocol)
}

// IdentifiedSince reports whether the receiver said what it is at or
// after since (serial.Reader.Greeted: until it has, it is asked again).
// Safe from any goroutine.
func (m *Monitor) IdentifiedSince(since time.Time) bool {
	at := m.said.Load()
	return at != 0 && at >= since.UnixNano()
}

// Text logs a receiver TXT message, each distinct text at most once a
// minute (u-blox repeats antenna status every few seconds).
func (m *Monitor) Text(t Text, now time.Time) {
	key := fmt.Sprint(t.Severity, t.Text)
	if last, ok := m.texts[key]; ok && now.Sub(last) < time.Minute {
		return
	}
	if len(m.texts) > 256 {
		clear(m.texts)
	}
	m.texts[key] = now
	level := slog.LevelInfo
	if t.Severity <= 1 {
		level = slog.LevelWarn
	}
	m.events.Emit(level, "gnss_text", "GNSS receiver says: "+t.Text, "gnss_text_severity", t.Severity)
}

// minute sums up, once a minute, what would be a line a second: a fix
// that keeps coming and going, and dates that cannot be right.
func (m *Monitor) minute(now time.Time) {
	if m.minuteFrom.IsZero() {
		m.minuteFrom = now
	}
	if now.Sub(m.minuteFrom) < time.Minute {
		return
	}
	if m.flips > fixFlapsOK {
		m.event(slog.LevelWarn, "gnss_fix_unstable", fmt.Sprintf("GNSS fix unstable: the receiver's reports changed between usable and not %d times in the last minute", m.flips),
			now, "flips", m.flips, "gnss_sats", m.s.Sats)
	}
	if d := m.s.Implausible - m.implSeen; d > 0 {
		m.event(slog.LevelWarn, "gnss_date_implausible", "GNSS receiver reports dates that cannot be right; not used: "+m.implWhy,
			now, "count", d, "reason", m.implWhy, "gnss_time", m.s.LastTime)
	}
	m.implSeen = m.s.Implausible
	if d := m.s.Conflicts - m.conflSeen; d > 0 {
		m.event(slog.LevelWarn, "gnss_sources_disagree", "GNSS receiver's UBX and NMEA name different times; UBX is used: "+m.conflWhy,
			now, "count", d, "example", m.conflWhy)
	}
	m.conflSeen = m.s.Conflicts
	m.flips, m.minuteFrom = 0, now
}

// Tick notices silence: an open receiver without reports, or a fix whose
// reports stopped.
func (m *Monitor) Tick(now time.Time, rejected uint64) {
	m.s.Rejected = rejected
	m.minute(now)
	if !m.linkUp {
		return
	}
	since := m.lastAny
	if since.IsZero() {
		since = m.s.Since // opened, nothing yet
	}
	quiet := now.Sub(since)
	if quiet < gnssSilence || m.quietOK {
		return
	}
	m.quietOK = true
	silent := quiet.Round(time.Second).String()
	switch m.s.State {
	case StateFix:
		m.enter(StateSilent, now)
		m.event(slog.LevelWarn, "gnss_fix_lost", "GNSS fix lost: no time reports", "reason", "silence", "silent_for", silent)
	case StateNoFix:
		m.enter(StateSilent, now)
		m.event(slog.LevelWarn, "gnss_silent", "GNSS receiver open but silent", "silent_for", silent)
	case StateSilent:
		m.event(slog.LevelWarn, "gnss_silent", "GNSS receiver open but no time sentences (check baud rate and port)",
			"silent_for", silent, "rejected_bytes", rejected)
	}
}
