package timebase

import (
	"log/slog"
	"time"

	"sitegm/event"
)

// ReadWatch turns the count of failed reads of the disciplined clock
// (Timebase.Failures) into events: the first failure (WARNING
// clock_read_error, naming the error) and the recovery once reads have
// succeeded for a second (NOTICE clock_read_ok, with how many failed and
// for how long). While reads fail, nothing that needs the clock's time is
// served or steered: sitegm holds.
type ReadWatch struct {
	fail, last    time.Time // since when reads fail (zero: they do not); the latest failure
	seen, atStart uint64    // failures counted so far; when this run of them began
}

// Check looks at the failures (n so far, the latest's error) at host
// time now, for the clock named clk.
func (w *ReadWatch) Check(now time.Time, n uint64, lastErr, clk string) []event.Event {
	var evs event.List
	switch {
	case n != w.seen:
		w.last = now
		if w.fail.IsZero() {
			w.fail, w.atStart = now, w.seen
			evs.Emit(slog.LevelWarn, "clock_read_error",
				"the disciplined clock cannot be read: holding (nothing that needs its time is served or steered)",
				"error", lastErr, "clock", clk)
		}
	case !w.fail.IsZero() && now.Sub(w.last) >= time.Second:
		evs.Emit(event.Notice, "clock_read_ok", "the disciplined clock reads again",
			"clock", clk, "failed_reads", n-w.atStart, "failed_for", w.last.Sub(w.fail).Round(time.Millisecond).String())
		w.fail = time.Time{}
	}
	w.seen = n
	return evs.Take()
}

// FailingFor is how long reads have been failing at now (0: they do not).
func (w *ReadWatch) FailingFor(now time.Time) time.Duration {
	if w.fail.IsZero() {
		return 0
	}
	return now.Sub(w.fail)
}
