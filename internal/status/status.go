// Package status is the status document of a running sitegm (what
// `sitegm status --json` prints and systemd's STATUS= sums up), the book
// that derives its rates and rejected-input counters, and the Unix socket
// that serves it.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"sitegm/clock/discipline"
	"sitegm/clock/leap"
	"sitegm/clock/timebase"
	"sitegm/hw/gnss"
	"sitegm/hw/ntpnet"
	"sitegm/hw/ptpnet"
	"sitegm/internal/monitor"
	"sitegm/ntp/upstream"
)

// Status is what `sitegm status --json` prints: a stable document for
// scripts. Fields are only ever added.
type Status struct {
	Version string          `json:"version"`
	Time    time.Time       `json:"time"` // host clock when the snapshot was taken
	Uptime  float64         `json:"uptime_s"`
	GNSS    GNSS            `json:"gnss"`
	Clock   Clock           `json:"clock"`
	PTP     []ptpnet.Status `json:"ptp"`
	NTP     []ntpnet.Status `json:"ntp"`
	Ready   bool            `json:"ready"`
	Summary string          `json:"summary"` // the one-line state (also systemd's STATUS=)
	Rates   []PortRate      `json:"rates"`
	// Rejected counts input turned away or unanswerable, by
	// "kind/interface/reason", since each port opened (docs/hostile-input.md).
	Rejected map[string]uint64 `json:"rejected"`
	// Followers are the PTP slaves and NTP clients seen (most recent
	// first, at most MaxFollowersShown), FollowerCounts how many of each
	// kind were active on each interface in the last ActiveWindow.
	Followers      []Follower      `json:"followers"`
	FollowerCounts []FollowerCount `json:"follower_counts"`
	// FollowersEvicted counts entries that made room in the bounded
	// table (a flood of invented senders shows here).
	FollowersEvicted uint64 `json:"followers_evicted"`
	// LostFollowers are the expected followers (`expect`) silent now.
	LostFollowers []string `json:"lost_followers"`
	// Monitors are the hosts whose clocks are watched ([[monitor]]).
	Monitors []monitor.Status `json:"monitors"`
	// Upstreams are the NTP servers the clock is checked against
	// ([[upstream]]), Selection what they agree on.
	Upstreams []upstream.Status `json:"upstreams"`
	Selection *Selection        `json:"selection,omitempty"`
	// Leap is the leap second table UTC and TAI are converted with.
	Leap Leap `json:"leap"`
}

// Leap is the leap second table and what is known of TAI-UTC
// (docs/clock.md, "The UTC offset when the table is old").
type Leap struct {
	Source string `json:"source"` // the file (or "built-in")
	// Expires is the table's own expiry (YYYY-MM-DD, "" unknown); DaysLeft
	// the whole days until it (negative once past).
	Expires    string  `json:"expires,omitempty"`
	DaysLeft   int     `json:"days_left"`
	ExpiresInS float64 `json:"expires_in_s"` // the same in seconds (negative once past)
	Expired    bool    `json:"expired"`
	TAIUTC     int     `json:"tai_utc"`
	// ReceiverConfirmed: the receiver's own count agrees; Receiver what it
	// added to the table, if anything.
	ReceiverConfirmed bool   `json:"receiver_confirmed"`
	Receiver          string `json:"receiver,omitempty"`
	// Known: TAI-UTC is known (a current table or the receiver's count,
	// nobody contradicting): PTP time may be marked traceable.
	Known bool `json:"known"`
}

// LeapOf describes table t at UTC time utc.
func LeapOf(t *leap.Table, utc time.Time, receiverConfirmed, known bool) Leap {
	l := Leap{Source: t.Source, Expired: t.Expired(utc), TAIUTC: t.Offset(utc), ReceiverConfirmed: receiverConfirmed,
		Receiver: t.Receiver, Known: known}
	if !t.Expires.IsZero() {
		l.Expires = t.Expires.Format("2006-01-02")
		l.DaysLeft = int(t.Expires.Sub(utc).Hours() / 24)
		l.ExpiresInS = t.Expires.Sub(utc).Seconds()
	}
	return l
}

// Selection is the upstreams' verdict: their combined time minus the
// clock, the half-width of the interval it is known within, the system
// peer, and whether the clock is held to disagree (gnss_ntp_disagree).
type Selection struct {
	OffsetNS   int64  `json:"offset_ns"`
	RootDistNS int64  `json:"root_distance_ns"`
	Best       string `json:"best"`
	Stratum    int    `json:"stratum"`
	Survivors  int    `json:"survivors"`
	Disagree   bool   `json:"disagree"`
}

// MaxFollowersShown bounds the followers listed in the document; the
// counts cover them all.
const MaxFollowersShown = 256

// ActiveWindow is how recently a follower was seen to count as active: a
// PTP slave sends a Delay_Req every second or more often, an NTP client
// polls every 64 s to 1024 s (w32time once an hour or less often: it
// shows in the table, with its interval, but may not count).
const ActiveWindow = 20 * time.Minute

// Follower is one PTP slave or NTP client seen.
type Follower struct {
	Kind      string  `json:"kind"` // "ptp", "ptpv1", "ntp"
	Interface string  `json:"interface"`
	Identity  string  `json:"identity"` // clockIdentity-port, v1 UUID-port, or the address
	Address   string  `json:"address"`
	Version   int     `json:"version,omitempty"` // NTP
	Mode      int     `json:"mode,omitempty"`    // NTP: 3 client, 1 symmetric active (w32time)
	Requests  uint64  `json:"requests"`
	KoD       uint64  `json:"kod,omitempty"`
	IntervalS float64 `json:"interval_s"` // observed time between requests
	AgeS      float64 `json:"last_seen_s"`
}

// FollowerCount is how many followers of a kind an interface has.
type FollowerCount struct {
	Kind      string `json:"kind"`
	Interface string `json:"interface"`
	Active    int    `json:"active"`
}

// GNSS is the receiver and PPS.
type GNSS struct {
	State          string  `json:"state"` // absent, silent, nofix, fix; none: no receiver configured (NTP only)
	Fix            string  `json:"fix"`
	Satellites     int     `json:"satellites"`
	LastTime       string  `json:"last_time"`
	LastReportAgeS float64 `json:"last_report_age_s"` // -1: never
	PPSOK          bool    `json:"pps_ok"`
	ChecksumErrors uint64  `json:"checksum_errors"`
	// ImplausibleDates counts reports whose date cannot be right (not
	// used): more than one week rollover early, far in the future, or
	// contradicting itself.
	ImplausibleDates uint64 `json:"implausible_dates"`
	// What the receiver says of its condition (u-blox UBX; "unknown" for
	// receivers that do not say): antenna ok/open/short, interference
	// (ok, warning, critical) and its indicator 0..255 (-1 unknown),
	// spoofing (none, indicated, affirmed), the survey-in, and the
	// receiver's own time accuracy estimate (0 unknown).
	Antenna          string              `json:"antenna"`
	Jamming          string              `json:"jamming"`
	JammingIndicator int                 `json:"jamming_indicator"`
	Spoofing         string              `json:"spoofing"`
	Survey           *gnss.SurveySummary `json:"survey,omitempty"`
	TimeAccuracyNS   int64               `json:"time_accuracy_ns"`
	// Conflicts counts epochs whose UBX and NMEA named different times.
	Conflicts uint64 `json:"conflicts"`
	// Distrusted says why the receiver's time is not followed now
	// (spoofing, its accuracy): the clock holds over meanwhile.
	Distrusted string `json:"distrusted,omitempty"`
	// Reports and ValidReports count the epochs decoded, Sentences the
	// NMEA sentences, RejectedBytes what the framer skipped; PPSEdges
	// the pulses and Paired those labelled with their second;
	// NMEALatencyMS how long after its pulse an epoch's first sentence
	// arrives (the pairing's running estimate).
	// CableDelayNS and PPSOffsetNS are the configured lateness of the
	// pulse taken off every edge (gnss.cable_delay, gnss.pps_offset).
	CableDelayNS  int64  `json:"cable_delay_ns"`
	PPSOffsetNS   int64  `json:"pps_offset_ns"`
	Reports       uint64 `json:"reports"`
	ValidReports  uint64 `json:"valid_reports"`
	Sentences     uint64 `json:"sentences"`
	RejectedBytes uint64 `json:"rejected_bytes"`
	PPSEdges      uint64 `json:"pps_edges"`
	Paired        uint64 `json:"paired"`
	NMEALatencyMS int64  `json:"nmea_latency_ms"`
	// Receiver is what the receiver said it is (UBX MON-VER), absent
	// when it did not say.
	Receiver *Receiver `json:"receiver,omitempty"`
	// PPSWidthNS is the pulse's width as measured from its two edges (0:
	// not measured: a SOCK source, or a device that captures one edge).
	PPSWidthNS int64 `json:"pps_width_ns"`
	// PPSBeforeStep counts pulses dropped because their clock was stepped
	// while they were on their way to the discipline (about one a step;
	// up to three at a leap second carried onto a PHC):
	// timebase.ErrBeforeStep.
	PPSBeforeStep uint64 `json:"pps_before_step"`
	// RecentEdges are the last pulses paired with their seconds, oldest
	// first (at most 8): what `sitegm commission` follows edge by edge.
	RecentEdges []PPSEdge `json:"recent_edges,omitempty"`
}

// Receiver is the receiver's identity.
type Receiver struct {
	Module   string `json:"module"`
	Firmware string `json:"firmware"`
	Hardware string `json:"hardware"`
	Software string `json:"software"`
	Protocol string `json:"protocol"`
}

// PPSEdge is one pulse: the second it marked (Unix seconds on the
// clock's timescale), the clock's offset from it as measured, and the
// receiver's sawtooth correction applied (qerr_ns, with corrected).
type PPSEdge struct {
	Second    int64   `json:"second"`
	OffsetNS  int64   `json:"offset_ns"`
	QErrNS    float64 `json:"qerr_ns"`
	Corrected bool    `json:"corrected"`
}

// Clock is the disciplined clock.
type Clock struct {
	Name  string `json:"name"`
	State string `json:"state"` // FREERUN, ACQUIRING, LOCKED, HOLDOVER
	// Reference leads the clock: "GNSS" or "NTP" (the upstreams, as
	// fallback or on a site without a receiver); Joining: it took the
	// clock over and is still slewing onto it; ReferenceChanges counts
	// the changes since the start.
	Reference          string  `json:"reference"`
	Joining            bool    `json:"joining,omitempty"`
	ReferenceChanges   uint64  `json:"reference_changes"`
	ClockClass         int     `json:"clock_class"`
	OffsetNS           int64   `json:"offset_ns"`
	FrequencyPPB       float64 `json:"frequency_ppb"`
	EstErrorNS         int64   `json:"est_error_ns"` // -1: unknown
	HoldoverElapsedS   float64 `json:"holdover_elapsed_s"`
	HoldoverRemainingS float64 `json:"holdover_remaining_s"`
	MinusHostNS        int64   `json:"clock_minus_host_ns,omitempty"` // virtual clock only
	MeasNoiseNS        int64   `json:"meas_noise_ns"`                 // the reference's measured noise (PPS jitter)
	ServoState         string  `json:"servo_state"`                   // the leading servo's state (start, track, holdover ...)
	// System is CLOCK_REALTIME slaved to the PHC (sync_system), when it is.
	System *SystemClock `json:"system,omitempty"`
	// SlavePHCs are the other PHCs kept on the disciplined one, whose
	// ports' hardware stamps are carried onto it.
	SlavePHCs []SlavePHC `json:"slave_phcs,omitempty"`
}

// ClockOf is the disciplined clock's part of the document: named name,
// running with frequency adjustment freq (ppb), in the discipline's state
// st; joining while NTP's servo slews onto GNSS; with the PHCs slaved to
// it. The system clock's part (its own servo) is the caller's.
func ClockOf(name string, freq float64, st discipline.Status, joining bool, slaves []*timebase.PHCSlave) Clock {
	c := Clock{Name: name, State: string(st.State), ClockClass: int(st.ClockClass),
		Reference: string(st.Reference), Joining: joining, ReferenceChanges: st.ReferenceChanges,
		OffsetNS: st.Estimate.Offset.Nanoseconds(), FrequencyPPB: Round3(freq), EstErrorNS: -1,
		MeasNoiseNS: st.Estimate.MeasNoise.Nanoseconds(), ServoState: st.ServoState.String()}
	if st.EstError != time.Duration(1<<63-1) { // the largest duration: unknown
		c.EstErrorNS = st.EstError.Nanoseconds()
	}
	for _, sl := range slaves {
		x := sl.Status()
		c.SlavePHCs = append(c.SlavePHCs, SlavePHC{Device: x.Device, State: x.State, OffsetNS: x.Offset.Nanoseconds(),
			BoundNS: x.Bound.Nanoseconds(), WindowNS: x.Window.Nanoseconds(), FrequencyPPB: Round3(x.Freq),
			Steps: x.Steps, Jumps: x.Jumps, Failures: x.Failures, LastError: x.LastError})
	}
	if st.State == "HOLDOVER" {
		c.HoldoverElapsedS = st.HoldoverElapsed.Seconds()
		c.HoldoverRemainingS = st.HoldoverRemaining.Seconds()
	}
	return c
}

// SlavePHC is one slave PHC (clock/timebase.PHCSlave): its offset from
// the disciplined PHC as last estimated, the bound of carrying a stamp
// on it onto the disciplined clock (3 sigma of that estimate plus half
// the reading's window), its frequency adjustment and state.
type SlavePHC struct {
	Device       string  `json:"device"`
	State        string  `json:"state"`
	OffsetNS     int64   `json:"offset_ns"`
	BoundNS      int64   `json:"bound_ns"`
	WindowNS     int64   `json:"window_ns"`
	FrequencyPPB float64 `json:"frequency_ppb"`
	Steps        uint64  `json:"steps"`
	Jumps        uint64  `json:"jumps"`
	Failures     uint64  `json:"failures"`
	LastError    string  `json:"last_error,omitempty"`
}

// SystemClock is the system clock's own servo: its offset from the
// PHC (as UTC) and the bound of that (|offset| + 3 sigma of its estimate,
// plus half the window of the readings it was measured with).
type SystemClock struct {
	OffsetNS   int64 `json:"offset_ns"`
	EstErrorNS int64 `json:"est_error_ns"`
}

// PortRate is the per-second rate of requests on a PTP or NTP interface
// over the last status period.
type PortRate struct {
	Kind      string  `json:"kind"` // "ptp", "ptpv1", "ntp"
	Interface string  `json:"interface"`
	PerSecond float64 `json:"per_second"`
}

// Book keeps the last document and the counters to derive rates from.
type Book struct {
	mu   sync.Mutex
	last *Status
	prev map[string]uint64
	at   time.Time
}

// Last is the latest document (nil before the first).
func (b *Book) Last() *Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Record completes s (request rates since the previous document, the
// summary, the rejected-input counters) and keeps it as the latest.
func (b *Book) Record(s *Status) {
	counts := map[string]uint64{}
	for _, p := range s.PTP {
		counts["ptp/"+p.Interface] = p.DelayReqs
		if p.V1 != nil {
			counts["ptpv1/"+p.Interface] = p.V1.DelayReqs
		}
	}
	for _, n := range s.NTP {
		counts["ntp/"+n.Interface] = n.Requests
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	dt := s.Time.Sub(b.at).Seconds()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := 0.0
		if p, ok := b.prev[k]; ok && dt > 0 && counts[k] >= p {
			r = float64(counts[k]-p) / dt
		}
		kind, iface, _ := strings.Cut(k, "/")
		s.Rates = append(s.Rates, PortRate{Kind: kind, Interface: iface, PerSecond: Round3(r)})
	}
	b.prev, b.at = counts, s.Time
	s.Summary = Summary(s)
	s.Rejected = Rejected(s)
	b.last = s
}

// Round3 truncates x to three decimals (ppb, rates).
// GNSSOf is the receiver's part of the document: its monitor's snapshot,
// the framer's counters, whether pulses arrive, and the pairing's
// counts and latency estimate.
func GNSSOf(g gnss.Snapshot, fs gnss.FramerStats, ppsOK bool, edges, paired uint64, latency time.Duration) GNSS {
	s := GNSS{State: string(g.State), Fix: g.Fix, Satellites: g.Sats, LastTime: g.LastTime, LastReportAgeS: -1, PPSOK: ppsOK,
		ChecksumErrors: fs.Rejects[gnss.RejectNMEAChecksum] + fs.Rejects[gnss.RejectUBXChecksum], ImplausibleDates: g.Implausible,
		Antenna: g.Antenna, Jamming: g.Jamming, JammingIndicator: g.JamInd, Spoofing: g.Spoofing, Survey: g.Survey,
		TimeAccuracyNS: g.TimeAccNS, Conflicts: g.Conflicts, Reports: g.Reports, ValidReports: g.Valid, Sentences: fs.NMEA,
		RejectedBytes: fs.Skipped, PPSEdges: edges, Paired: paired, NMEALatencyMS: latency.Round(time.Millisecond).Milliseconds()}
	if !g.LastReport.IsZero() {
		s.LastReportAgeS = time.Since(g.LastReport).Seconds()
	}
	if v := g.Version; v != nil {
		s.Receiver = &Receiver{Module: v.Module, Firmware: v.Firmware, Hardware: v.Hardware, Software: v.Software, Protocol: v.Protocol}
	}
	return s
}

// EdgesOf is the discipline's recent pulses for the document.
func EdgesOf(recent []discipline.EdgeSample) []PPSEdge {
	out := make([]PPSEdge, 0, len(recent))
	for _, e := range recent {
		out = append(out, PPSEdge{Second: e.Second.Unix(), OffsetNS: e.Offset.Nanoseconds(),
			QErrNS: float64(e.QErr) / float64(time.Nanosecond), Corrected: e.Corrected})
	}
	return out
}

func Round3(x float64) float64 { return float64(int64(x*1000)) / 1000 }

// Summary is the one-line state: systemd's STATUS= and the first line of
// `sitegm status`.
func Summary(s *Status) string {
	line := fmt.Sprintf("%s class %d", s.Clock.State, s.Clock.ClockClass)
	if s.Clock.Reference != "" && s.Clock.Reference != "GNSS" {
		line = fmt.Sprintf("%s on %s class %d", s.Clock.State, s.Clock.Reference, s.Clock.ClockClass)
	}
	if s.Clock.EstErrorNS >= 0 {
		line += fmt.Sprintf(" ±%s", time.Duration(s.Clock.EstErrorNS).Round(time.Nanosecond))
	}
	if s.GNSS.State != "none" {
		line += fmt.Sprintf(", GNSS %s %d sats, PPS %s", s.GNSS.State, s.GNSS.Satellites, map[bool]string{true: "ok", false: "missing"}[s.GNSS.PPSOK])
	}
	if sel := s.Selection; sel != nil {
		line += fmt.Sprintf(", NTP upstreams %d agree", sel.Survivors)
	}
	for _, p := range s.PTP {
		line += fmt.Sprintf(", PTP %s %s", p.Interface, p.State)
	}
	for _, n := range s.NTP {
		line += fmt.Sprintf(", NTP %s %s", n.Interface, n.State)
	}
	return line
}

// statusConns bounds the status connections served at once: a client
// that connects and never reads holds one for its 2 s write deadline, and
// a flood of them must not grow goroutines without end.
const statusConns = 16

// Serve answers every connection on the socket at path with the latest
// document as JSON, then closes it. The returned stop closes the listener
// and removes the socket, if it is still the one made here. An empty path
// serves nothing.
func Serve(path string, b *Book, log *slog.Logger) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket file left there is stale: this daemon holds the status
	// claim (hw/claim), so no other sitegm is serving it.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	// Readable by the operator's tools (the socket's directory decides
	// who can reach it).
	os.Chmod(path, 0o666)
	ours, _ := os.Stat(path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		acceptLoop(l, statusConns, log, func(c net.Conn) {
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			s := b.Last()
			if s == nil {
				s = &Status{Summary: "starting"}
			}
			json.NewEncoder(c).Encode(s)
		})
	}()
	return func() {
		l.Close()
		<-done
		if now, err := os.Stat(path); err == nil && ours != nil && os.SameFile(now, ours) {
			os.Remove(path)
		}
	}, nil
}

// acceptLoop serves l until it is closed, at most max connections at
// once (more are closed at once). An accept that fails for any other
// reason (EMFILE when the process is out of descriptors, ECONNABORTED) is
// logged, at most once a minute, and retried after a pause that grows to a
// second: it used to end the listener for good.
func acceptLoop(l net.Listener, max int, log *slog.Logger, serve func(net.Conn)) {
	sem := make(chan struct{}, max)
	var wg sync.WaitGroup
	defer wg.Wait()
	pause := 5 * time.Millisecond
	var lastLog time.Time
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if time.Since(lastLog) >= time.Minute {
				lastLog = time.Now()
				log.Warn("status socket: accept failed; retrying", "event", "status_socket_error", "error", err.Error())
			}
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // too many at once
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			defer c.Close()
			serve(c)
		}()
	}
}
