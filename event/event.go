// Package event is sitegm's one vocabulary for what happened: an Event (a
// name, a level, a message and attributes) that the sans-I/O cores return
// and the daemon logs, and the NOTICE level. It imports nothing of sitegm,
// so that every layer (clock, the servers, hw, the daemon) may use it.
//
// Conventions (docs/architecture.md): an event is a state change, named
// in lower snake case ("clock_state", "pps_lost"); its attributes are
// key/value pairs with lower snake case keys, which journald receives in
// upper case (CLOCK_STATE); the logger adds event=NAME.
package event

import (
	"context"
	"log/slog"
)

// Notice sits between INFO and WARNING, as syslog's NOTICE does: normal
// but significant events (a fix gained, the clock locked).
const Notice = slog.Level(2)

// Event is something to log.
type Event struct {
	Name  string
	Level slog.Level
	Msg   string
	Attrs []any
}

// List gathers the events of a core until its owner takes them.
type List struct{ evs []Event }

// Emit adds an event.
func (l *List) Emit(level slog.Level, name, msg string, attrs ...any) {
	l.evs = append(l.evs, Event{Name: name, Level: level, Msg: msg, Attrs: attrs})
}

// Take returns the events gathered since the last Take and forgets them.
func (l *List) Take() []Event {
	evs := l.evs
	l.evs = nil
	return evs
}

// Log writes events to log, each with event=NAME before its attributes.
func Log(log *slog.Logger, evs []Event) {
	for _, e := range evs {
		log.Log(context.Background(), e.Level, e.Msg, append([]any{"event", e.Name}, e.Attrs...)...)
	}
}
