package servo

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
)

var update = flag.Bool("update", false, "rewrite testdata/replay.golden from the current servo")

// replayStep is one input to the servo and what came out.
type replayStep struct {
	Kind   string `json:"k"` // "s" sample, "t" tick
	At     int64  `json:"at,omitempty"`
	Offset int64  `json:"off,omitempty"`
	Now    int64  `json:"now"`
	// Outputs.
	Step    int64   `json:"step,omitempty"`
	Freq    float64 `json:"freq,omitempty"`
	SetFreq bool    `json:"set,omitempty"`
	Note    Note    `json:"note,omitempty"`
	NoteOff int64   `json:"noff,omitempty"`
	Dropped bool    `json:"drop,omitempty"`
	State   State   `json:"st"`
	EstOff  int64   `json:"eoff,omitempty"`
	EstSig  int64   `json:"esig,omitempty"`
	EstFreq float64 `json:"efreq,omitempty"`
}

// replayTrace drives a Kalman servo through 20 minutes of a closed loop:
// a TCXO 12 ppm off, a PPS with 30 ns of noise, a drift file 3 ppm wrong,
// a 40 s outage, a 60 µs GNSS jump for 8 s, a 200 ppb frequency step and a
// noisy stretch, and records every input and output. The same inputs fed
// to a servo give the same outputs, bit for bit, whatever its code looks
// like inside.
func replayTrace(s *Kalman) []replayStep {
	rng := rand.New(rand.NewSource(42))
	t0 := time.Date(2026, 6, 1, 0, 0, 37, 0, time.UTC)
	var out []replayStep
	x, y, u := 0.2, 12e-6, 0.0 // clock minus truth (s), oscillator error, applied adjustment
	now := t0
	apply := func(a Action) {
		if a.Step != 0 {
			x += a.Step.Seconds()
		}
		if a.SetFreq {
			u = a.Freq * 1e-9
		}
	}
	record := func(st replayStep, a Action) {
		st.Step, st.Freq, st.SetFreq, st.Note, st.NoteOff, st.Dropped = int64(a.Step), a.Freq, a.SetFreq, a.Note, int64(a.Offset), a.PriorDropped
		st.State = s.State()
		if len(out)%10 == 0 {
			e := s.Estimate(now)
			st.EstOff, st.EstFreq = int64(e.Offset), e.Freq
			if e.OffsetSigma != time.Duration(math.MaxInt64) {
				st.EstSig = int64(e.OffsetSigma)
			}
		}
		out = append(out, st)
	}
	for sec := 0; sec < 1200; sec++ {
		// Half a second of clock: tick at the middle.
		x += (y + u) * 0.5
		now = now.Add(500 * time.Millisecond)
		a := s.Tick(now)
		apply(a)
		record(replayStep{Kind: "t", Now: now.UnixNano()}, a)
		x += (y + u) * 0.5
		now = now.Add(500 * time.Millisecond)
		if sec == 600 {
			y += 200e-9 // a temperature step
		}
		if sec >= 300 && sec < 340 {
			continue // outage
		}
		noise := 30e-9
		if sec >= 900 && sec < 960 {
			noise = 2e-6
		}
		z := x + rng.NormFloat64()*noise
		if sec >= 700 && sec < 708 {
			z -= 60e-6 // GNSS jumped
		}
		at := now.Add(-100 * time.Millisecond)
		nw := now.Add(50 * time.Millisecond)
		a = s.Sample(at, time.Duration(math.Round(z*1e9)), nw)
		apply(a)
		record(replayStep{Kind: "s", At: at.UnixNano(), Offset: int64(math.Round(z * 1e9)), Now: nw.UnixNano()}, a)
	}
	return out
}

func replayServo() *Kalman {
	return NewKalman(Config{Osc: clock.TCXO, MeasNoise: 2 * time.Microsecond, MaxFreq: 500000,
		InitialFreq: -9000, InitialFreqSigma: 50, JumpThreshold: 10 * time.Microsecond})
}

// TestReplay feeds the recorded trace and checks every output.
func TestReplay(t *testing.T) {
	got := replayTrace(replayServo())
	path := "testdata/replay.golden"
	if *update {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(f)
		enc := json.NewEncoder(w)
		for _, st := range got {
			enc.Encode(st)
		}
		w.Flush()
		f.Close()
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (make it with go test ./clock/servo -run TestReplay -update)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	var diffs []string
	for sc.Scan() {
		var want replayStep
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		if i >= len(got) {
			t.Fatalf("golden has more steps than the replay (%d)", len(got))
		}
		if got[i] != want && len(diffs) < 5 {
			diffs = append(diffs, fmt.Sprintf("step %d:\n got %+v\nwant %+v", i, got[i], want))
		}
		i++
	}
	if i != len(got) {
		t.Errorf("replay has %d steps, golden %d", len(got), i)
	}
	if len(diffs) > 0 {
		t.Errorf("the servo's outputs changed:\n%s", strings.Join(diffs, "\n"))
	}
}
