package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"sitegm/hw/gnss"
	"sitegm/hw/serial"
	"sitegm/internal/logging"
)

// GNSSState is what the operator needs to know about the receiver.
type GNSSState string

// Receiver states, in the order things go right.
const (
	GNSSAbsent GNSSState = "absent" // the device cannot be opened or was unplugged
	GNSSSilent GNSSState = "silent" // open, but no time sentences (wrong baud, wrong port, receiver booting)
	GNSSNoFix  GNSSState = "nofix"  // time sentences saying the receiver has no fix
	GNSSFix    GNSSState = "fix"    // valid, dated time reports
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

// GNSSSnapshot is the receiver's state for status output.
type GNSSSnapshot struct {
	Device     string    `json:"device"`
	State      GNSSState `json:"state"`
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
	// gnss.Report.Implausible).
	Implausible uint64 `json:"implausible_dates"`
}

// GNSSMonitor turns receiver events into one state and logs each change
// as an event. It is driven by explicit inputs (no clock reads).
type GNSSMonitor struct {
	log     *slog.Logger
	s       GNSSSnapshot
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
}

// NewGNSSMonitor starts with the receiver absent.
func NewGNSSMonitor(log *slog.Logger, device string, now time.Time) *GNSSMonitor {
	return &GNSSMonitor{log: log, s: GNSSSnapshot{Device: device, State: GNSSAbsent, Fix: "unknown", Sats: -1, InView: -1, Since: now},
		texts: map[string]time.Time{}}
}

// Snapshot returns the current state.
func (m *GNSSMonitor) Snapshot() GNSSSnapshot { return m.s }

func (m *GNSSMonitor) event(level slog.Level, name, msg string, now time.Time, attrs ...any) {
	attrs = append([]any{"event", name, "gnss_device", m.s.Device, "gnss_state", string(m.s.State)}, attrs...)
	m.log.Log(context.Background(), level, msg, attrs...)
}

func (m *GNSSMonitor) enter(st GNSSState, now time.Time) (prev GNSSState, held time.Duration) {
	prev, held = m.s.State, now.Sub(m.s.Since)
	m.s.State, m.s.Since = st, now
	return prev, held
}

// Link records the stream going up or down.
func (m *GNSSMonitor) Link(l serial.Link, now time.Time) {
	if l.Up == m.linkUp && (l.Up || m.s.State == GNSSAbsent) {
		return
	}
	m.linkUp = l.Up
	if l.Up {
		m.s.LinkErr = ""
		m.lastAny = time.Time{}
		m.quietOK = false
		prev, held := m.enter(GNSSSilent, now)
		if prev == GNSSAbsent && !m.s.LastReport.IsZero() {
			m.event(logging.LevelNotice, "receiver_back", "GNSS receiver back", now, "gone_for", held.Round(time.Second).String())
		} else {
			m.event(logging.LevelNotice, "receiver_open", "GNSS receiver open", now)
		}
		return
	}
	if l.Err != nil {
		m.s.LinkErr = l.Err.Error()
	}
	prev, _ := m.enter(GNSSAbsent, now)
	m.s.Fix, m.s.Sats, m.s.InView = "none", -1, -1
	if prev == GNSSFix {
		m.event(slog.LevelWarn, "gnss_fix_lost", "GNSS fix lost: receiver gone", now, "reason", "receiver gone")
	}
	m.event(slog.LevelWarn, "receiver_gone", "GNSS receiver gone; retrying", now, "error", m.s.LinkErr)
}

// Report records one epoch.
func (m *GNSSMonitor) Report(r gnss.Report, now time.Time) {
	m.s.Reports++
	m.lastAny = now
	m.quietOK = false
	m.s.LastReport = now
	m.s.Sats, m.s.InView, m.s.Fix = r.Sats, r.InView, r.Fix.String()
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
	if r.Rollover && usable && m.s.State != GNSSFix {
		m.event(slog.LevelWarn, "gnss_week_rollover", "GNSS date was 1024 weeks early (GPS week rollover); corrected", now,
			"gnss_time", r.UTCString())
	}
	switch {
	case usable && m.s.State != GNSSFix && m.usableRun >= fixConfirm:
		m.enter(GNSSFix, now)
		m.event(logging.LevelNotice, "gnss_fix_gained", "GNSS fix gained", now,
			"gnss_fix", r.Fix.String(), "gnss_sats", r.Sats, "gnss_time", r.UTCString(), "gnss_talker", r.Talker)
	case !usable && m.s.State == GNSSFix && now.Sub(m.lastUsable) >= fixHold:
		m.enter(GNSSNoFix, now)
		reason := "receiver reports no fix"
		switch {
		case r.Implausible != "":
			reason = "implausible date: " + r.Implausible
		case !r.HasDate:
			reason = "no date"
		}
		m.event(slog.LevelWarn, "gnss_fix_lost", "GNSS fix lost", now, "reason", reason, "gnss_sats", r.Sats)
	case !usable && m.s.State == GNSSSilent:
		m.enter(GNSSNoFix, now)
		m.event(logging.LevelNotice, "gnss_no_fix", "GNSS receiver talking, no fix yet", now, "gnss_sats", r.Sats)
	}
}

// Text logs a receiver TXT message, each distinct text at most once a
// minute (u-blox repeats antenna status every few seconds).
func (m *GNSSMonitor) Text(t gnss.Text, now time.Time) {
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
	m.log.Log(context.Background(), level, "GNSS receiver says: "+t.Text, "event", "gnss_text", "gnss_text_severity", t.Severity)
}

// minute sums up, once a minute, what would be a line a second: a fix
// that keeps coming and going, and dates that cannot be right.
func (m *GNSSMonitor) minute(now time.Time) {
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
	m.flips, m.minuteFrom = 0, now
}

// Tick notices silence: an open receiver without reports, or a fix whose
// reports stopped.
func (m *GNSSMonitor) Tick(now time.Time, rejected uint64) {
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
	case GNSSFix:
		m.enter(GNSSSilent, now)
		m.event(slog.LevelWarn, "gnss_fix_lost", "GNSS fix lost: no time reports", now, "reason", "silence", "silent_for", silent)
	case GNSSNoFix:
		m.enter(GNSSSilent, now)
		m.event(slog.LevelWarn, "gnss_silent", "GNSS receiver open but silent", now, "silent_for", silent)
	case GNSSSilent:
		m.event(slog.LevelWarn, "gnss_silent", "GNSS receiver open but no time sentences (check baud rate and port)", now,
			"silent_for", silent, "rejected_bytes", rejected)
	}
}

// PPSMonitor notices the PPS coming and going.
type PPSMonitor struct {
	log  *slog.Logger
	name string
	last time.Time
	ok   bool
}

// ppsSilence: three missed pulses is a lost PPS.
const ppsSilence = 3 * time.Second

// NewPPSMonitor watches a PPS source.
func NewPPSMonitor(log *slog.Logger, name string) *PPSMonitor {
	return &PPSMonitor{log: log, name: name}
}

// Edge records a pulse.
func (p *PPSMonitor) Edge(now time.Time) {
	p.last = now
	if !p.ok {
		p.ok = true
		p.log.Log(context.Background(), logging.LevelNotice, "PPS gained", "event", "pps_gained", "pps", p.name)
	}
}

// Tick notices silence.
func (p *PPSMonitor) Tick(now time.Time) {
	if p.ok && now.Sub(p.last) > ppsSilence {
		p.ok = false
		p.log.Warn("PPS lost", "event", "pps_lost", "pps", p.name, "silent_for", now.Sub(p.last).Round(time.Second).String())
	}
}

// OK tells whether pulses are arriving.
func (p *PPSMonitor) OK() bool { return p.ok }
