// Package driftfile keeps the frequency a clock needed across restarts,
// as chrony's driftfile and ptp4l's do: a start from the remembered
// frequency locks in seconds instead of minutes. The file is outside
// input (it may be from another box, another clock, or a log redirected
// to the wrong path), so what is read is bounded in size and value, and
// the servo still tests it against the first GNSS samples.
package driftfile

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"sitegm/clock"
	"sitegm/clock/servo"
)

// Record is the drift file: the frequency the clock needed last, how well
// it was known, when, and on which clock and oscillator.
type Record struct {
	FreqPPB    float64   `json:"freq_ppb"`
	SigmaPPB   float64   `json:"sigma_ppb"`
	Written    time.Time `json:"written"`
	Clock      string    `json:"clock"`
	Oscillator string    `json:"oscillator"`
}

// maxSize bounds what is read of a drift file: the record is about
// 150 bytes, and a file of 200 MB (a log redirected to the wrong path)
// must not be read whole.
const maxSize = 4096

// Read reads a drift file and checks that it is plausible for clk: a
// frequency within what any oscillator needs (servo.FreqPriorPPB) and the
// clock can be set to, an uncertainty that is a number. A wrong value that
// passes these checks is still tested against the first GNSS samples (the
// servo's probation), and dropped if they disagree.
func Read(path string, maxPPB float64) (Record, error) {
	var r Record
	f, err := os.Open(path)
	if err != nil {
		return r, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return r, err
	}
	if len(b) > maxSize {
		return r, fmt.Errorf("%s: larger than %d bytes: not a drift file", path, maxSize)
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

// SetAside renames a drift file the servo found wrong, so that the
// next start does not trust it again; the next lock writes a new one.
func SetAside(path string) error {
	return os.Rename(path, path+".rejected")
}

// Write replaces the drift file atomically: a crash leaves the old
// file or the new one, never half of one.
func Write(path string, r Record) error {
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

// Sigma is how far a drift file's frequency may be off after age:
// what it was known to, plus the oscillator's drift since, plus a floor for
// temperature.
func Sigma(r Record, osc clock.Oscillator, now time.Time) float64 {
	age := now.Sub(r.Written).Seconds()
	if age < 0 {
		age = 0
	}
	s := r.SigmaPPB + osc.Drift*age*1e9 + 10
	return math.Min(s, MaxSigmaPPB)
}

// MaxSigmaPPB is the widest uncertainty a drift file's frequency is
// taken with: a part per million, still far narrower than an unknown
// oscillator's ±100 ppm.
const MaxSigmaPPB = 1000
