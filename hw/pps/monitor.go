package pps

import (
	"log/slog"
	"time"

	"sitegm/event"
)

// Monitor notices the PPS coming and going. It returns what changed as
// events (Events), like the other cores: the daemon logs them.
type Monitor struct {
	name   string
	last   time.Time
	ok     bool
	events event.List
}

// ppsSilence: three missed pulses is a lost PPS.
const ppsSilence = 3 * time.Second

// NewMonitor watches a PPS source.
func NewMonitor(name string) *Monitor { return &Monitor{name: name} }

// Edge records a pulse.
func (p *Monitor) Edge(now time.Time) {
	p.last = now
	if !p.ok {
		p.ok = true
		p.events.Emit(event.Notice, "pps_gained", "PPS gained", "pps", p.name)
	}
}

// Tick notices silence.
func (p *Monitor) Tick(now time.Time) {
	if p.ok && now.Sub(p.last) > ppsSilence {
		p.ok = false
		p.events.Emit(slog.LevelWarn, "pps_lost", "PPS lost", "pps", p.name, "silent_for", now.Sub(p.last).Round(time.Second).String())
	}
}

// OK tells whether pulses are arriving.
func (p *Monitor) OK() bool { return p.ok }

// Events returns and forgets what changed since the last call.
func (p *Monitor) Events() []event.Event { return p.events.Take() }
