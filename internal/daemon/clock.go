package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/clock/servo"
	"sitegm/hw/nic"
	"sitegm/hw/pps"
	"sitegm/internal/config"
)

// timebase is the disciplined clock and how timestamps taken on other
// clocks are carried onto it.
//
// A read that fails is an error, never another clock's time: a PHC read
// failing used to return the host's UTC for a TAI time (37 s off) and
// carry a realtime stamp over unconverted. Every caller now holds (skips
// what needed the time) and the failure is counted for the main loop to
// report (clock_read_error).
type timebase struct {
	clk     clock.Clock
	virtual *clock.Virtual
	phc     *clock.PHC
	system  *clock.System // slaved to the PHC (discipline = "phc", sync_system)
	// failures counts failed reads; lastErr is the latest one's text.
	failures atomic.Uint64
	lastErr  atomic.Pointer[string]
}

func (tb *timebase) failed(err error) error {
	tb.failures.Add(1)
	msg := err.Error()
	tb.lastErr.Store(&msg)
	return err
}

// ErrNoPHC: the PHC the configuration names is not there (yet): its NIC
// may come up after sitegm at boot, so the caller waits for it.
var ErrNoPHC = errors.New("PTP hardware clock not available")

// openTimebase opens the clock clock.discipline names.
func openTimebase(cfg config.Config, table *leap.Table) (*timebase, error) {
	switch cfg.Clock.Discipline {
	case config.DisciplineVirtual:
		// Start on TAI, like the PHC it stands in for.
		off := time.Duration(table.Offset(time.Now())) * time.Second
		v := clock.NewVirtual(off)
		return &timebase{clk: v, virtual: v}, nil
	case config.DisciplineSystem:
		s, err := clock.NewSystem()
		if err != nil {
			return nil, err
		}
		return &timebase{clk: s}, nil
	case config.DisciplinePHC:
		dev, err := nic.PHCDevice(cfg.Clock.PHC)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoPHC, cfg.Clock.PHC, err)
		}
		p, err := clock.OpenPHC(dev)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoPHC, dev, err)
		}
		tb := &timebase{clk: p, phc: p}
		if cfg.Clock.SyncSystem {
			if s, err := clock.NewSystem(); err == nil {
				tb.system = s
			} else {
				return nil, fmt.Errorf("clock.sync_system: %w", err)
			}
		}
		return tb, nil
	}
	return nil, fmt.Errorf("unknown discipline %q", cfg.Clock.Discipline)
}

// now reads the disciplined clock.
func (tb *timebase) now() (time.Time, error) {
	if tb.virtual != nil {
		return tb.virtual.NowTime(), nil
	}
	t, err := tb.clk.Now()
	if err != nil {
		return time.Time{}, tb.failed(fmt.Errorf("read %s: %w", tb.clk.Name(), err))
	}
	return t, nil
}

// fromRealtime carries a CLOCK_REALTIME timestamp (kernel PPS, SOCK,
// serial arrival, software packet stamps) onto the disciplined clock.
func (tb *timebase) fromRealtime(t time.Time) (time.Time, error) {
	switch {
	case tb.virtual != nil:
		return tb.virtual.FromHost(t), nil
	case tb.phc != nil:
		so, err := tb.phc.SysOffset()
		if err != nil {
			return time.Time{}, tb.failed(fmt.Errorf("compare %s with CLOCK_REALTIME: %w", tb.phc.Name(), err))
		}
		return t.Add(so.PHC.Sub(so.System)), nil
	}
	return t, nil
}

// errWrongClock: a timestamp on a clock that cannot be carried onto the
// disciplined one (a configuration error, not a read failure).
var errWrongClock = errors.New("timestamp on another clock")

// fromEdge carries a PPS edge onto the disciplined clock.
func (tb *timebase) fromEdge(e pps.Edge) (time.Time, error) {
	if e.Clock == pps.Realtime {
		return tb.fromRealtime(e.Time)
	}
	if tb.phc != nil && e.Clock == tb.phc.Name() {
		return e.Time, nil
	}
	return time.Time{}, fmt.Errorf("%w: edge on %s cannot be carried onto %s", errWrongClock, e.Clock, tb.clk.Name())
}

// ppsSource builds the PPS source of gnss.pps.
func ppsSource(cfg config.Config, tb *timebase) (pps.Source, error) {
	spec := cfg.GNSS.PPS
	clear := cfg.GNSS.PPSEdge == config.EdgeClear
	switch spec.Kind {
	case config.PPSKernel:
		return &pps.KernelSource{Path: spec.Path, Clear: clear}, nil
	case config.PPSSock:
		return &pps.SockSource{Path: spec.Path}, nil
	case config.PPSPHC:
		dev, err := nic.PHCDevice(spec.Path)
		if err != nil {
			return nil, err
		}
		if tb.phc == nil || dev != tb.phc.Name() {
			return nil, fmt.Errorf("gnss.pps %s: the PPS must be timestamped on the disciplined PHC", dev)
		}
		return &pps.ExttsSource{Device: dev, Channel: uint32(spec.Channel), Clear: clear, Width: cfg.GNSS.PPSWidth.Duration}, nil
	}
	return nil, nil // none
}

// measNoise is the sample noise to expect from a PPS source before the
// servo has measured it (it does within eight samples). It is a prior, so
// it errs on the wide side: 2 µs for every pulse source, though a timing
// receiver on a NIC's pin scatters by tens of ns. The kernel lab showed
// why: with a 50 ns prior (the EXTTS figure it used to be) a pulse
// scattering by 1 µs locked in 4 s and then advertised a bound up to nine
// times smaller than the clock's real error (clock/sim
// TestPPSNoiseHonestWhateverItIs). With 2 µs a clean pulse locks in about
// 15 s instead of 5 and every pulse from 20 ns to 10 µs of jitter keeps
// its error within what is advertised.
func measNoise(kind config.PPSKind) time.Duration {
	if kind == config.PPSNone {
		return 20 * time.Millisecond
	}
	return 2 * time.Microsecond
}

// driftRecord is the drift file: the frequency the clock needed last.
type driftRecord struct {
	FreqPPB    float64   `json:"freq_ppb"`
	SigmaPPB   float64   `json:"sigma_ppb"`
	Written    time.Time `json:"written"`
	Clock      string    `json:"clock"`
	Oscillator string    `json:"oscillator"`
}

// driftMaxSize bounds what is read of a drift file: the record is about
// 150 bytes, and a file of 200 MB (a log redirected to the wrong path)
// must not be read whole.
const driftMaxSize = 4096

// readDrift reads a drift file and checks that it is plausible for clk: a
// frequency within what any oscillator needs (servo.FreqPriorPPB) and the
// clock can be set to, an uncertainty that is a number. A wrong value that
// passes these checks is still tested against the first GNSS samples (the
// servo's probation), and dropped if they disagree.
func readDrift(path string, maxPPB float64) (driftRecord, error) {
	var r driftRecord
	f, err := os.Open(path)
	if err != nil {
		return r, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, driftMaxSize+1))
	if err != nil {
		return r, err
	}
	if len(b) > driftMaxSize {
		return r, fmt.Errorf("%s: larger than %d bytes: not a drift file", path, driftMaxSize)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	limit := math.Min(maxPPB, servo.FreqPriorPPB)
	switch {
	case math.IsNaN(r.FreqPPB) || math.Abs(r.FreqPPB) > limit:
		return r, fmt.Errorf("%s: implausible frequency %v ppb (beyond ±%.0f)", path, r.FreqPPB, limit)
	case math.IsNaN(r.SigmaPPB) || r.SigmaPPB < 0 || math.IsInf(r.SigmaPPB, 0):
		return r, fmt.Errorf("%s: implausible uncertainty %v ppb", path, r.SigmaPPB)
	case r.Written.IsZero():
		return r, fmt.Errorf("%s: no date", path)
	}
	return r, nil
}

// setAsideDrift renames a drift file the servo found wrong, so that the
// next start does not trust it again; the next lock writes a new one.
func setAsideDrift(path string) error {
	return os.Rename(path, path+".rejected")
}

// writeDrift replaces the drift file atomically: a crash leaves the old
// file or the new one, never half of one.
func writeDrift(path string, r driftRecord) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".drift-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// driftSigma is how far a drift file's frequency may be off after age:
// what it was known to, plus the oscillator's drift since, plus a floor for
// temperature.
func driftSigma(r driftRecord, osc clock.Oscillator, now time.Time) float64 {
	age := now.Sub(r.Written).Seconds()
	if age < 0 {
		age = 0
	}
	s := r.SigmaPPB + osc.Drift*age*1e9 + 10
	return math.Min(s, 1000)
}

func sameClock(a, b string) bool { return strings.EqualFold(a, b) }
