package driftfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/event"
)

// Issue 11 item 10: a drift file is bounded in size and value; what
// passes is still tested against GNSS by the servo (clock/sim
// TestWrongDriftFileDistrusted).
func TestReadDriftBounds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"freq_ppb":-4321.5,"sigma_ppb":3,"written":"2026-11-25T10:00:00Z","clock":"virtual","oscillator":"tcxo"}`
	if r, err := Read(write("good", good), 500000); err != nil || r.FreqPPB != -4321.5 {
		t.Fatalf("good file: %+v %v", r, err)
	}
	big := filepath.Join(dir, "big")
	f, _ := os.Create(big)
	f.Truncate(200 << 20) // 200 MB, sparse
	f.Close()
	start := time.Now()
	for name, c := range map[string]struct {
		path, want string
	}{
		"300 ppm":     {write("a", strings.Replace(good, "-4321.5", "300000", 1)), "implausible frequency"},
		"beyond PHC":  {write("b", strings.Replace(good, "-4321.5", "999999", 1)), "implausible frequency"},
		"bad sigma":   {write("c", strings.Replace(good, `"sigma_ppb":3`, `"sigma_ppb":-1`, 1)), "implausible uncertainty"},
		"no date":     {write("d", strings.Replace(good, `"written":"2026-11-25T10:00:00Z",`, "", 1)), "no date"},
		"200 MB":      {big, "larger than"},
		"not json":    {write("e", "drift"), "invalid"},
		"trailing GB": {write("f", good+strings.Repeat(" ", 5000)), "larger than"},
	} {
		if _, err := Read(c.path, 62500); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("reading the bad files took %v", d)
	}
	// A PHC whose range is narrower than the file's value.
	if _, err := Read(write("g", strings.Replace(good, "-4321.5", "70000", 1)), 62500); err == nil {
		t.Error("a frequency beyond the clock's range was accepted")
	}
}

// Write then Read gives the record back; a write replaces the file whole.
func TestWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "drift")
	r := Record{FreqPPB: 12.5, SigmaPPB: 0.3, Written: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Clock: "/dev/ptp0", Oscillator: "ocxo"}
	if err := Write(p, r); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(p, 62500); err != nil || got != r {
		t.Fatalf("read back %+v %v, want %+v", got, err, r)
	}
	if err := SetAside(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p + ".rejected"); err != nil {
		t.Error(err)
	}
	if s := Sigma(r, clock.TCXO, r.Written.Add(24*time.Hour)); s <= r.SigmaPPB || s > 1000 {
		t.Errorf("sigma a day later %v", s)
	}
}

// The keeper writes once the clock has locked, then every Every and at
// exit; it sets a file GNSS disagreed with aside once; it never writes a
// frequency that is not known.
func TestKeeperSchedule(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drift")
	k := Keeper{Path: path, Clock: "virtual", Osc: clock.TCXO}
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	names := func(evs []event.Event) (n []string) {
		for _, e := range evs {
			n = append(n, e.Name)
		}
		return n
	}
	if evs := k.Save(t0, false, Now{FreqPPB: 10, SigmaPPB: 1}); len(evs) != 0 || fileThere(path) {
		t.Fatalf("written before any lock: %v", names(evs))
	}
	locked := Now{EverLocked: true, FreqPPB: 4000, SigmaPPB: 2}
	if evs := names(k.Save(t0, false, locked)); len(evs) != 1 || evs[0] != "drift_written" {
		t.Fatalf("first save after the lock: %v", evs)
	}
	locked.FreqPPB = 4001
	k.Save(t0.Add(Every/2), false, locked)
	if r, _ := Read(path, 1e6); r.FreqPPB != 4000 {
		t.Errorf("rewritten before Every: %v", r.FreqPPB)
	}
	k.Save(t0.Add(Every/2), true, locked)
	if r, _ := Read(path, 1e6); r.FreqPPB != 4001 || r.Clock != "virtual" || r.Oscillator != "tcxo" {
		t.Errorf("not written at exit: %+v", r)
	}
	if evs := names(k.Save(t0.Add(2*Every), false, Now{EverLocked: true, FreqPPB: 9, SigmaPPB: 5000})); len(evs) != 0 {
		t.Errorf("an unknown frequency written: %v", evs)
	}
	bad := Now{EverLocked: true, Distrusted: true}
	if evs := names(k.Save(t0.Add(3*Every), false, bad)); len(evs) != 1 || evs[0] != "drift_set_aside" || !fileThere(path+".rejected") {
		t.Errorf("set aside: %v", evs)
	}
	if evs := names(k.Save(t0.Add(4*Every), false, bad)); len(evs) != 0 {
		t.Errorf("set aside twice: %v", evs)
	}
}

func fileThere(p string) bool { _, err := os.Stat(p); return err == nil }

// A box that boots with its clock wrong reads its drift file from a clock
// that may be before the file was written (1970, the image's date): the
// file's age is unknown then, and its frequency is taken with the widest
// uncertainty instead of as fresh; from a right clock, as ever.
func TestKeeperStartFromAWrongClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drift")
	written := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := Write(path, Record{FreqPPB: 2500, SigmaPPB: 2, Written: written, Clock: "/dev/ptp0", Oscillator: "tcxo"}); err != nil {
		t.Fatal(err)
	}
	floor := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	k := Keeper{Path: path, Clock: "/dev/ptp0", Osc: clock.TCXO, Floor: floor}
	for _, c := range []struct {
		name    string
		now     time.Time
		unknown bool
	}{
		{"1970", time.Unix(30, 0), true},
		{"the image's date, before the floor", floor.AddDate(0, 0, -1), true},
		{"after the floor but before the file", written.AddDate(0, 0, -3), true},
		{"a day after the file", written.AddDate(0, 0, 1), false},
		{"a month ahead", written.AddDate(0, 1, 0), false},
	} {
		freq, sigma, ok, evs := k.Start(62500, c.now)
		if !ok || freq != 2500 || len(evs) != 1 {
			t.Fatalf("%s: %v %v %v %v", c.name, freq, sigma, ok, evs)
		}
		if got := sigma == MaxSigmaPPB; got != c.unknown {
			t.Errorf("%s: sigma %v ppb (age unknown: %v, want %v)", c.name, sigma, got, c.unknown)
		}
		if !c.unknown && sigma >= MaxSigmaPPB {
			t.Errorf("%s: sigma %v, want the file's own with its age", c.name, sigma)
		}
	}
}

// The servo starts from the drift file's frequency, set on the clock at
// once; without a file, from the adjustment the clock already has (one
// that is beyond what the clock accepts counts as none).
func TestKeeperInitial(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "drift")
	k := Keeper{Path: path, Clock: "virtual", Osc: clock.TCXO}
	clk := clock.NewVirtual(0)
	clk.SetFrequency(20000) // what another servo left
	if freq, sigma, _ := k.Initial(clk, now); freq != 20000 || sigma != 0 {
		t.Errorf("no file: %v ppb ± %v, want the clock's 20000, unknown", freq, sigma)
	}
	if err := Write(path, Record{FreqPPB: -3000, SigmaPPB: 2, Written: now.Add(-time.Hour), Clock: "virtual", Oscillator: "tcxo"}); err != nil {
		t.Fatal(err)
	}
	freq, sigma, _ := k.Initial(clk, now)
	if got, _ := clk.Frequency(); freq != -3000 || sigma <= 0 || got != -3000 {
		t.Errorf("file: %v ppb ± %v, clock set to %v; want the file's -3000 set", freq, sigma, got)
	}
	os.Remove(path)
	for _, c := range []oddClock{{freq: 2e6}, {err: os.ErrPermission}} {
		if freq, _, _ := k.Initial(c, now); freq != 0 {
			t.Errorf("%+v: started from %v ppb, want 0", c, freq)
		}
	}
}

// oddClock reports an adjustment beyond its range, or none.
type oddClock struct {
	clock.Clock
	freq float64
	err  error
}

func (c oddClock) MaxFrequency() float64          { return 500000 }
func (c oddClock) Frequency() (float64, error)    { return c.freq, c.err }
func (c oddClock) SetFrequency(ppb float64) error { return nil }
