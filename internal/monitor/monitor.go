// Package monitor watches other hosts' clocks against sitegm's own: the
// video recording server, NVRs and cameras that answer NTP ([[monitor]]).
// Sans-I/O: the network code polls and hands each result to Record, which
// keeps the state, the events and the status; hw/ntpnet polls.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sitegm/event"
	"sitegm/ntp"
)

// Config is one watched host.
type Config struct {
	Name, Host     string
	Interval, Warn time.Duration
	// Peer: the other grandmaster of a redundant pair (config.Monitor.Peer):
	// the limit is both clocks' error bounds, not Warn.
	Peer bool
}

// Status is one host's state for `sitegm status`, the page and metrics.
type Status struct {
	Name      string `json:"name"`
	Host      string `json:"host"`
	Reachable bool   `json:"reachable"`
	Reach     uint8  `json:"reach"` // the last 8 polls, one bit each (RFC 5905 clause 13), newest lowest
	OffsetNS  int64  `json:"offset_ns"`
	DelayNS   int64  `json:"delay_ns"`
	Stratum   int    `json:"stratum"`
	Leap      int    `json:"leap"`
	RefID     string `json:"refid"`
	Off       bool   `json:"off"` // |offset| beyond warn
	// WarnNS is the limit in use: warn, or for a peer both error bounds
	// and half the delay of the sample the offset is from.
	WarnNS    int64   `json:"warn_ns"`
	Peer      bool    `json:"peer,omitempty"`
	LastError string  `json:"last_error,omitempty"`
	Polls     uint64  `json:"polls"`
	Answers   uint64  `json:"answers"`
	AgeS      float64 `json:"age_s"` // since the last answer; -1 never
	// Compared says whether the offset was measured against a clock
	// that knew the time (LOCKED or HOLDOVER): before that it is shown
	// but raises nothing.
	Compared bool `json:"compared"`
}

// unreachableAfter polls without an answer make a host unreachable (as
// in NTP's reach register, three missed polls are a lost source).
const unreachableAfter = 3

// filterLen is how many answered samples the offset is chosen from: the
// one of least delay (RFC 5905 clause 10, the clock filter), so a
// recorder busy for one poll does not raise an alarm.
const filterLen = 4

type sample struct {
	offset, delay time.Duration
	s             ntp.Sample
}

// Host is one watched host's state.
type Host struct {
	mu      sync.Mutex // Record (the poller) and Status (the publisher)
	cfg     Config
	log     *slog.Logger
	reach   uint8
	misses  int
	samples []sample
	last    sample
	lastAt  time.Time
	polls   uint64
	answers uint64
	lastErr error
	unreach bool
	off     bool
	cmp     bool
	limit   time.Duration
}

// New watches one host.
func New(cfg Config, log *slog.Logger) *Host {
	return &Host{cfg: cfg, log: log}
}

// Config is what the host was configured with.
func (h *Host) Config() Config { return h.cfg }

// Record takes one poll's result; own is sitegm's error bound when it
// was measured, 0 when its clock did not know the time (not LOCKED or
// HOLDOVER: quality.TrustedBound).
func (h *Host) Record(r ntp.PollResult, own time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.polls++
	h.reach <<= 1
	if r.Err != nil {
		h.lastErr = r.Err
		h.misses++
		if h.misses >= unreachableAfter && !h.unreach {
			h.unreach = true
			h.event(slog.LevelWarn, "monitor_unreachable", "monitored host does not answer NTP", "monitor_error", r.Err.Error(),
				"monitor_missed", h.misses)
		}
		return
	}
	h.reach |= 1
	h.answers++
	h.misses, h.lastErr = 0, nil
	off, delay := r.Sample.Offset(r.T1, r.T4)
	h.samples = append(h.samples, sample{off, delay, r.Sample})
	if len(h.samples) > filterLen {
		h.samples = h.samples[1:]
	}
	best := h.samples[0]
	for _, s := range h.samples[1:] {
		if s.delay < best.delay {
			best = s
		}
	}
	// A peer that says it is not synchronized (LI 3, stratum 0) claims no
	// time: nothing to compare.
	trusted := own > 0 && (!h.cfg.Peer || best.s.Leap != 3 && best.s.Stratum != 0)
	h.last, h.lastAt, h.cmp = best, r.T4, trusted
	h.limit = h.cfg.Warn
	if h.cfg.Peer {
		// RFC 5905 clause 10: the peer's root distance bounds its error
		// (root dispersion plus half the root delay); the true offset lies
		// within half the sample's delay of the measured one.
		h.limit = own + best.s.RootDisp + best.s.RootDelay/2 + best.delay/2
	}
	if h.unreach {
		h.unreach = false
		h.event(event.Notice, "monitor_unreachable", "monitored host answers NTP again")
	}
	if !trusted {
		return
	}
	what, again := "monitored host's clock is off sitegm's", "monitored host's clock agrees with sitegm's again"
	if h.cfg.Peer {
		what = "the other grandmaster's clock and this one's differ by more than both their error bounds: one of the two is wrong"
		again = "the other grandmaster's clock and this one's agree within their error bounds again"
	}
	switch abs := best.offset.Abs(); {
	case !h.off && abs > h.limit:
		h.off = true
		h.event(slog.LevelWarn, "monitor_offset", what)
	case h.off && abs < h.limit*8/10:
		// 80 %: an offset hovering at the threshold does not flap.
		h.off = false
		h.event(event.Notice, "monitor_offset", again)
	}
}

func (h *Host) event(level slog.Level, name, msg string, attrs ...any) {
	a := []any{"event", name, "monitor", h.cfg.Name, "monitor_host", h.cfg.Host}
	if h.answers > 0 {
		a = append(a, "monitor_offset", h.last.offset.String(), "monitor_delay", h.last.delay.String(), "monitor_warn", h.limit.String())
	}
	h.log.Log(context.Background(), level, msg, append(a, attrs...)...)
}

// Status is the host's state at now.
func (h *Host) Status(now time.Time) Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Status{Name: h.cfg.Name, Host: h.cfg.Host, Reachable: h.answers > 0 && !h.unreach, Reach: h.reach,
		Off: h.off, WarnNS: int64(h.cfg.Warn), Peer: h.cfg.Peer, Polls: h.polls, Answers: h.answers, AgeS: -1, Compared: h.cmp}
	if h.lastErr != nil {
		s.LastError = h.lastErr.Error()
		var k ntp.KissError
		if errors.As(h.lastErr, &k) {
			s.LastError = k.Error()
		}
	}
	if h.cfg.Peer {
		s.WarnNS = 0 // no limit before the peer's first answer
	}
	if h.answers > 0 {
		s.WarnNS = int64(h.limit)
		s.OffsetNS, s.DelayNS = int64(h.last.offset), int64(h.last.delay)
		s.Stratum, s.Leap, s.AgeS = int(h.last.s.Stratum), int(h.last.s.Leap), now.Sub(h.lastAt).Seconds()
		s.RefID = refID(h.last.s)
	}
	return s
}

// refID is the reference identifier as ntpq shows it: four characters
// at stratum 1, an IPv4 address (or a hash) above.
func refID(s ntp.Sample) string {
	b := []byte{byte(s.RefID >> 24), byte(s.RefID >> 16), byte(s.RefID >> 8), byte(s.RefID)}
	if s.Stratum <= 1 {
		out := make([]byte, 0, 4)
		for _, c := range b {
			if c >= 0x20 && c < 0x7F {
				out = append(out, c)
			}
		}
		return string(out)
	}
	return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
}
