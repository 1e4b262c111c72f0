package daemon

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

	"sitegm/hw/gnss"
	"sitegm/internal/version"
)

// Status is what `sitegm status --json` prints: a stable document for
// scripts. Fields are only ever added.
type Status struct {
	Version string      `json:"version"`
	Time    time.Time   `json:"time"` // host clock when the snapshot was taken
	Uptime  float64     `json:"uptime_s"`
	GNSS    GNSSStatus  `json:"gnss"`
	Clock   ClockStatus `json:"clock"`
	PTP     []PTPStatus `json:"ptp"`
	NTP     []NTPStatus `json:"ntp"`
	Ready   bool        `json:"ready"`
	Summary string      `json:"summary"` // the one-line state (also systemd's STATUS=)
	Rates   []PortRate  `json:"rates"`
	// Rejected counts input turned away or unanswerable, by
	// "kind/interface/reason", since each port opened (docs/hostile-input.md).
	Rejected map[string]uint64 `json:"rejected"`
}

// GNSSStatus is the receiver and PPS.
type GNSSStatus struct {
	State          string  `json:"state"` // absent, silent, nofix, fix
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
}

// ClockStatus is the disciplined clock.
type ClockStatus struct {
	Name               string  `json:"name"`
	State              string  `json:"state"` // FREERUN, ACQUIRING, LOCKED, HOLDOVER
	ClockClass         int     `json:"clock_class"`
	OffsetNS           int64   `json:"offset_ns"`
	FrequencyPPB       float64 `json:"frequency_ppb"`
	EstErrorNS         int64   `json:"est_error_ns"` // -1: unknown
	HoldoverElapsedS   float64 `json:"holdover_elapsed_s"`
	HoldoverRemainingS float64 `json:"holdover_remaining_s"`
	MinusHostNS        int64   `json:"clock_minus_host_ns,omitempty"` // virtual clock only
	// System is CLOCK_REALTIME slaved to the PHC (sync_system), when it is.
	System *SystemClockStatus `json:"system,omitempty"`
}

// SystemClockStatus is the system clock's own servo: its offset from the
// PHC (as UTC) and the bound of that (|offset| + 3 sigma of its estimate,
// plus half the window of the readings it was measured with).
type SystemClockStatus struct {
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

// statusBook keeps the last snapshot and the counters to derive rates.
type statusBook struct {
	mu   sync.Mutex
	last *Status
	prev map[string]uint64
	at   time.Time
}

func (b *statusBook) get() *Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// snapshot builds the status document (on the daemon's loop).
func (d *Daemon) snapshot() *Status {
	g := d.gnss.Snapshot()
	fs := d.dec.FramerStats()
	st := d.disc.Status(d.nowOrLast())
	freq, _ := d.tb.clk.Frequency()
	s := &Status{Version: version.BuildDate, Time: time.Now(), Uptime: time.Since(d.started).Seconds(), Ready: d.ready.Load()}
	s.GNSS = GNSSStatus{State: string(g.State), Fix: fmt.Sprint(g.Fix), Satellites: g.Sats, LastTime: g.LastTime,
		LastReportAgeS: -1, PPSOK: d.ppsM.OK(),
		ChecksumErrors: fs.Rejects[gnss.RejectNMEAChecksum] + fs.Rejects[gnss.RejectUBXChecksum], ImplausibleDates: g.Implausible}
	if !g.LastReport.IsZero() {
		s.GNSS.LastReportAgeS = time.Since(g.LastReport).Seconds()
	}
	s.Clock = ClockStatus{Name: d.tb.clk.Name(), State: string(st.State), ClockClass: int(st.ClockClass),
		OffsetNS: st.Estimate.Offset.Nanoseconds(), FrequencyPPB: round3(freq), EstErrorNS: clampNS(st.EstError)}
	if st.EstError == time.Duration(1<<63-1) {
		s.Clock.EstErrorNS = -1
	}
	if d.sysServo != nil {
		e := d.sysServo.Estimate(time.Now())
		s.Clock.System = &SystemClockStatus{OffsetNS: e.Offset.Nanoseconds(),
			EstErrorNS: (e.Offset.Abs() + 3*e.OffsetSigma + d.sysWindow/2).Nanoseconds()}
		if e.OffsetSigma == time.Duration(1<<63-1) {
			s.Clock.System.EstErrorNS = -1
		}
	}
	if st.State == "HOLDOVER" {
		s.Clock.HoldoverElapsedS = st.HoldoverElapsed.Seconds()
		s.Clock.HoldoverRemainingS = st.HoldoverRemaining.Seconds()
	}
	if d.tb.virtual != nil {
		h := time.Now()
		s.Clock.MinusHostNS = d.tb.virtual.FromHost(h).Sub(h).Nanoseconds()
	}
	s.PTP = d.PTPStatuses()
	s.NTP = d.NTPStatuses()
	// Rates since the previous snapshot.
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
	b := &d.status
	b.mu.Lock()
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
		s.Rates = append(s.Rates, PortRate{Kind: kind, Interface: iface, PerSecond: round3(r)})
	}
	b.prev, b.at = counts, s.Time
	s.Summary = summary(s)
	s.Rejected = rejectedCounters(s)
	b.last = s
	b.mu.Unlock()
	return s
}

// summary is the one-line state: systemd's STATUS= and the first line of
// `sitegm status`.
func summary(s *Status) string {
	line := fmt.Sprintf("%s class %d", s.Clock.State, s.Clock.ClockClass)
	if s.Clock.EstErrorNS >= 0 {
		line += fmt.Sprintf(" ±%s", time.Duration(s.Clock.EstErrorNS).Round(time.Nanosecond))
	}
	line += fmt.Sprintf(", GNSS %s %d sats, PPS %s", s.GNSS.State, s.GNSS.Satellites, map[bool]string{true: "ok", false: "missing"}[s.GNSS.PPSOK])
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

// serveStatus answers every connection on the status socket with the
// latest snapshot as JSON, then closes it. The returned stop closes the
// listener and removes the socket, if it is still the one made here.
func (d *Daemon) serveStatus() (stop func(), err error) {
	path := d.cfg.Status.Socket
	if path == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket file left there is stale: this daemon holds the status
	// claim (claimNames), so no other sitegm is serving it.
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
		acceptLoop(l, statusConns, d.log, func(c net.Conn) {
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			s := d.status.get()
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
