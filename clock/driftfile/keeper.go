package driftfile

import (
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"sitegm/clock"
	"sitegm/event"
)

// Every is how often the drift file is rewritten while the clock runs
// locked: often enough that a power cut loses little of what was learnt,
// rarely enough not to wear a flash card.
const Every = 10 * time.Minute

// Keeper writes the drift file on sitegm's schedule: every Every once the
// clock has locked, and at exit; and it sets the file aside, once, when
// GNSS disagreed with the frequency it held.
type Keeper struct {
	Path  string // "" keeps no file
	Clock string // the clock's name, written with the frequency
	Osc   clock.Oscillator
	// Floor is the earliest date the local clock can honestly read (the
	// build date, gnss.date_floor): a clock before it, or before the
	// file's own date, booted wrong (no RTC battery), and the file's age
	// cannot be told from it.
	Floor time.Time
	last  time.Time
	aside bool
}

// Start reads the drift file for a clock that can be set within ±maxPPB:
// the frequency to start from and how well it is known now, when the
// file is there, of this clock and plausible (Read); what to log either
// way. A missing file is no news.
func (k *Keeper) Start(maxPPB float64, now time.Time) (freq, sigma float64, ok bool, evs []event.Event) {
	var l event.List
	r, err := Read(k.Path, maxPPB)
	switch {
	case k.Path == "" || os.IsNotExist(err):
	case err != nil:
		l.Emit(slog.LevelWarn, "drift_unusable", "drift file unusable; locking without it", "error", err.Error())
	case !strings.EqualFold(r.Clock, k.Clock):
		l.Emit(slog.LevelInfo, "drift_other_clock", "drift file is of another clock; locking without it", "drift_clock", r.Clock)
	case now.Before(k.Floor) || now.Before(r.Written):
		// The frequency is still the best guess there is, but an age
		// taken from a clock that is wrong would make it look fresh: it
		// is known only to the widest uncertainty a file can claim, and
		// the servo learns the rest from GNSS.
		freq, sigma, ok = r.FreqPPB, MaxSigmaPPB, true
		l.Emit(slog.LevelInfo, "drift_read", "drift file read; the clock reads before the file was written, its age is unknown",
			"freq_ppb", freq, "sigma_ppb", sigma, "age", "unknown", "written", r.Written.Format(time.RFC3339))
	default:
		freq, sigma, ok = r.FreqPPB, Sigma(r, k.Osc, now), true
		l.Emit(slog.LevelInfo, "drift_read", "drift file read", "freq_ppb", freq, "sigma_ppb", sigma,
			"age", now.Sub(r.Written).Round(time.Second).String())
	}
	return freq, sigma, ok, l.Take()
}

// Initial is the frequency adjustment the servo of clk starts from, and
// how well it is known (0: not at all): the drift file's (Start), set on
// clk at once, since every second at the wrong rate is error the servo
// has to take out; without a usable file, the adjustment clk already
// runs with (chronyd's, ptp4l's, a previous run's, a boot's 0). The servo
// models the clock from the edge of its first sample, a fraction of a
// second before it first steers: an adjustment it does not know about
// runs that fraction unaccounted for (20 ppm for half a second is 10 µs)
// and reads as a frequency error that the start then mislearns (the
// kernel lab's kernel-pps, which leaves the system clock 20 ppm off).
// An adjustment clk cannot report, or beyond what it accepts, counts as 0.
func (k *Keeper) Initial(clk clock.Clock, now time.Time) (freq, sigma float64, evs []event.Event) {
	freq, sigma, ok, evs := k.Start(clk.MaxFrequency(), now)
	if ok {
		clk.SetFrequency(freq)
		return freq, sigma, evs
	}
	if f, err := clk.Frequency(); err == nil && math.Abs(f) <= clk.MaxFrequency() {
		return f, 0, evs
	}
	return 0, 0, evs
}

// Now is what the discipline says when the keeper looks: whether the
// clock ever locked, whether GNSS disagreed with the file's frequency,
// and the frequency and its uncertainty now.
type Now struct {
	EverLocked, Distrusted bool
	FreqPPB, SigmaPPB      float64
}

// Save is called each tick, and with final at exit; it returns what to
// log. A frequency not known to a part per million is not written.
func (k *Keeper) Save(now time.Time, final bool, n Now) []event.Event {
	var evs event.List
	if k.Path == "" {
		return nil
	}
	if n.Distrusted && !k.aside {
		k.aside = true
		if SetAside(k.Path) == nil {
			evs.Emit(slog.LevelWarn, "drift_set_aside", "drift file set aside: GNSS disagreed with it", "file", k.Path+".rejected")
		}
	}
	if !n.EverLocked || (!final && now.Sub(k.last) < Every) || n.SigmaPPB <= 0 || n.SigmaPPB > 1000 {
		return evs.Take()
	}
	r := Record{FreqPPB: n.FreqPPB, SigmaPPB: n.SigmaPPB, Written: now.UTC(), Clock: k.Clock, Oscillator: k.Osc.Name}
	if err := Write(k.Path, r); err != nil {
		evs.Emit(slog.LevelWarn, "drift_write_error", "drift file not written", "error", err.Error())
		return evs.Take()
	}
	k.last = now
	evs.Emit(slog.LevelDebug, "drift_written", "drift file written", "freq_ppb", r.FreqPPB)
	return evs.Take()
}
