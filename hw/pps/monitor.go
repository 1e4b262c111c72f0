package pps

import (
	"context"
	"log/slog"
	"time"

	"sitegm/internal/logging"
)

// Monitor notices the PPS coming and going.
type Monitor struct {
	log  *slog.Logger
	name string
	last time.Time
	ok   bool
}

// ppsSilence: three missed pulses is a lost PPS.
const ppsSilence = 3 * time.Second

// NewMonitor watches a PPS source.
func NewMonitor(log *slog.Logger, name string) *Monitor {
	return &Monitor{log: log, name: name}
}

// Edge records a pulse.
func (p *Monitor) Edge(now time.Time) {
	p.last = now
	if !p.ok {
		p.ok = true
		p.log.Log(context.Background(), logging.LevelNotice, "PPS gained", "event", "pps_gained", "pps", p.name)
	}
}

// Tick notices silence.
func (p *Monitor) Tick(now time.Time) {
	if p.ok && now.Sub(p.last) > ppsSilence {
		p.ok = false
		p.log.Warn("PPS lost", "event", "pps_lost", "pps", p.name, "silent_for", now.Sub(p.last).Round(time.Second).String())
	}
}

// OK tells whether pulses are arriving.
func (p *Monitor) OK() bool { return p.ok }
