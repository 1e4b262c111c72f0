// Package watch is what an unattended site is watched by: who follows
// sitegm (PTP slaves, NTP clients; the expected ones missed), the hosts
// whose clocks are compared with sitegm's ([[monitor]]), and the last 24
// hours of figures for the status page. Once a second the daemon hands it
// the status document; it completes the document and records the history.
package watch

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"sitegm/event"
	"sitegm/internal/config"
	"sitegm/internal/followers"
	"sitegm/internal/history"
	"sitegm/internal/monitor"
	"sitegm/internal/status"
)

// Watch holds the tables, the monitored hosts and the history.
type Watch struct {
	Followers *followers.Table
	Monitors  []*monitor.Host
	History   *history.Store
	expect    *followers.Watch
	log       *slog.Logger
}

// New builds the watch of configuration cfg from start.
func New(cfg config.Config, start time.Time, log *slog.Logger) *Watch {
	w := &Watch{Followers: followers.New(followers.Capacity), History: history.New(), log: log}
	w.expect = followers.NewWatch(start, expected(cfg))
	for _, m := range cfg.Monitor {
		w.Monitors = append(w.Monitors, monitor.New(monitor.Config{Name: m.Name, Host: m.Host,
			Interval: m.Interval.Duration, Warn: m.Warn.Duration, Peer: m.Peer}, log))
	}
	return w
}

// Expect replaces the expected followers (a reload); what was lost is
// forgotten, and reported again if it still is.
func (w *Watch) Expect(cfg config.Config, now time.Time) {
	w.expect = followers.NewWatch(now, expected(cfg))
}

func expected(cfg config.Config) []followers.Expected {
	var exp []followers.Expected
	for _, p := range cfg.PTP {
		for _, e := range p.Expect {
			exp = append(exp, followers.Expected{Kind: followers.PTPv2, Iface: p.Interface, Name: e})
		}
	}
	for _, n := range cfg.NTP {
		for _, e := range n.Expect {
			exp = append(exp, followers.Expected{Kind: followers.NTP, Iface: n.Interface, Name: e})
		}
	}
	return exp
}

// Complete fills in s's followers and monitored hosts and raises the
// expected followers' events, before s is published.
func (w *Watch) Complete(now time.Time, s *status.Status) {
	entries := w.Followers.Snapshot()
	for _, c := range w.expect.Check(now, entries) {
		w.event(c)
	}
	for _, x := range w.expect.Lost() {
		s.LostFollowers = append(s.LostFollowers, x.Iface+" "+x.Name)
	}
	s.Followers = make([]status.Follower, 0, min(len(entries), status.MaxFollowersShown))
	for i, e := range entries {
		if i == status.MaxFollowersShown {
			break
		}
		s.Followers = append(s.Followers, status.Follower{Kind: e.Kind.String(), Interface: e.Iface, Identity: e.Identity(),
			Address: e.Addr.String(), Version: e.Version, Mode: e.Mode, Requests: e.Count, KoD: e.KoD,
			IntervalS: e.Interval.Seconds(), AgeS: now.Sub(e.Last).Seconds()})
	}
	s.FollowersEvicted = w.Followers.Evicted()
	for k, n := range w.Followers.Active(now, status.ActiveWindow) {
		s.FollowerCounts = append(s.FollowerCounts, status.FollowerCount{Kind: k.Kind.String(), Interface: k.Iface, Active: n})
	}
	// Every served interface has its counts, zero ones too (a plot of
	// followers needs its zeros; an alert needs the series to exist).
	have := map[string]bool{}
	for _, c := range s.FollowerCounts {
		have[c.Kind+"/"+c.Interface] = true
	}
	for _, p := range s.PTP {
		kinds := []string{"ptp"}
		if p.V1 != nil {
			kinds = append(kinds, "ptpv1")
		}
		for _, k := range kinds {
			if !have[k+"/"+p.Interface] {
				s.FollowerCounts = append(s.FollowerCounts, status.FollowerCount{Kind: k, Interface: p.Interface})
			}
		}
	}
	for _, n := range s.NTP {
		if !have["ntp/"+n.Interface] {
			s.FollowerCounts = append(s.FollowerCounts, status.FollowerCount{Kind: "ntp", Interface: n.Interface})
		}
	}
	sort.Slice(s.FollowerCounts, func(i, j int) bool {
		a, b := s.FollowerCounts[i], s.FollowerCounts[j]
		return a.Interface+a.Kind < b.Interface+b.Kind
	})
	s.Monitors = make([]monitor.Status, 0, len(w.Monitors))
	for _, m := range w.Monitors {
		s.Monitors = append(s.Monitors, m.Status(now))
	}
}

func (w *Watch) event(c followers.Change) {
	name, what := "ptp_follower_lost", "PTP follower"
	if c.Kind == followers.NTP {
		name, what = "ntp_client_lost", "NTP client"
	}
	attrs := []any{"event", name, "follower", c.Name, "interface", c.Iface, "silent", c.Silent.Round(time.Second).String()}
	if c.Seen != nil {
		attrs = append(attrs, "follower_address", c.Seen.Addr.String(), "follower_identity", c.Seen.Identity())
	}
	if c.Lost {
		msg := "expected " + what + " silent"
		if c.Seen == nil {
			msg = "expected " + what + " never seen"
		}
		w.log.Log(context.Background(), slog.LevelWarn, msg, attrs...)
		return
	}
	w.log.Log(context.Background(), event.Notice, "expected "+what+" back", attrs...)
}

// State numbers for the clock state timeline.
var stateNumber = map[string]float64{"FREERUN": 0, "ACQUIRING": 1, "HOLDOVER": 2, "LOCKED": 3}

// Record adds the second's figures of the published s (with its rates)
// to the history; s is only read.
func (w *Watch) Record(now time.Time, s *status.Status) {
	h := w.History
	c := s.Clock
	h.Add("clock_state", "", now, stateNumber[c.State])
	h.Add("clock_class", "", now, float64(c.ClockClass))
	h.Add("clock_offset", "s", now, float64(c.OffsetNS)/1e9)
	if c.EstErrorNS >= 0 {
		h.Add("clock_est_error", "s", now, float64(c.EstErrorNS)/1e9)
	}
	h.Add("pps_noise", "s", now, float64(c.MeasNoiseNS)/1e9)
	for _, r := range s.Rates {
		name := "requests/" + r.Kind + "/" + r.Interface
		h.Add(name, "/s", now, r.PerSecond)
	}
	for _, f := range s.FollowerCounts {
		h.Add("followers/"+f.Kind+"/"+f.Interface, "", now, float64(f.Active))
	}
	for _, m := range s.Monitors {
		if m.Answers > 0 && m.AgeS >= 0 && m.AgeS < 2 {
			// A fresh answer only: the history shows measurements,
			// not the last one repeated.
			h.Add("monitor_offset/"+m.Name, "s", now, float64(m.OffsetNS)/1e9)
		}
	}
}
