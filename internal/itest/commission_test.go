package itest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sitegm/internal/peers"
)

// FreshLeapFile writes the host's leap-seconds.list with its expiry a
// year from now (peers.FreshLeapList).
func FreshLeapFile(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/usr/share/zoneinfo/leap-seconds.list")
	if err != nil {
		t.Skipf("no leap-seconds.list (tzdata): %v", err)
	}
	return WriteFile(t, dir, "leap-seconds.list", string(peers.FreshLeapList(b, time.Now().Add(365*24*time.Hour))))
}

// commissionReport is what the test reads of the JSON document.
type commissionReport struct {
	Verdict string `json:"verdict"`
	Mode    string `json:"mode"`
	Checks  []struct {
		ID, Verdict, Figure, Reason string
	} `json:"checks"`
	Receiver struct {
		Module   string `json:"module"`
		Firmware string `json:"firmware"`
		Seconds  int    `json:"seconds"`
		Fix      int    `json:"fix_seconds"`
	} `json:"receiver"`
	PPS struct {
		Counted  int `json:"counted"`
		Expected int `json:"expected"`
		Missing  int `json:"missing"`
		Edges    []struct {
			Second int64 `json:"second"`
		} `json:"edges"`
		Residual struct {
			N     int     `json:"n"`
			Sigma float64 `json:"sigma_ns"`
		} `json:"residual"`
		Offset *struct {
			Mean  float64 `json:"mean_ns"`
			Sigma float64 `json:"sigma_ns"`
		} `json:"offset"`
		Sawtooth *struct {
			Min float64 `json:"min_ns"`
			Max float64 `json:"max_ns"`
		} `json:"sawtooth"`
	} `json:"pps"`
	Delays struct {
		Cable int64 `json:"cable_delay_ns"`
	} `json:"delays"`
	Budgets []struct {
		Service string  `json:"service"`
		Total   float64 `json:"total_ns"`
		Verdict string  `json:"verdict"`
	} `json:"budgets"`
}

func (r *commissionReport) check(id string) (verdict, figure string) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Verdict, c.Figure
		}
	}
	return "", ""
}

// runCommission runs `sitegm commission` and reads its report; the exit
// code must say FAIL exactly when the report does.
func runCommission(t *testing.T, cfg, out string, d time.Duration) *commissionReport {
	t.Helper()
	cmd := exec.Command(Bin(t, "sitegm"), "commission", "-c", cfg, "--duration", d.String(), "--out", out)
	b, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sitegm commission: %v", err)
	}
	t.Logf("sitegm commission (exit %d):\n%s", code, b)
	raw, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	var r commissionReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if want := map[bool]int{true: 1, false: 0}[r.Verdict == "FAIL"]; code != want {
		t.Errorf("exit %d with a %s report", code, r.Verdict)
	}
	page, err := os.ReadFile(out + ".html")
	if err != nil {
		t.Fatalf("no page: %v", err)
	}
	if !strings.Contains(string(page), "<svg") || regexp.MustCompile(`src=|href=|url\(|<script`).Match(page) {
		t.Errorf("the page has no plot, or loads something")
	}
	return &r
}

// TestCommission runs `sitegm commission` against a running sitegm and,
// beside it, against a receiver with no sitegm (standalone): each report
// names the receiver (UBX MON-VER, the first poll unanswered), counts every pulse, and measures the
// jitter gnss-sim puts on the pulse.
func TestCommission(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	const jitter = 30.0 // ns, gnss-sim --pps-jitter
	sim := []string{"--protocol", "both", "--pps-jitter", fmt.Sprintf("%.0fns", jitter), "--qerr", "8ns", "--pps-delay", "150ns",
		"--fault", "survey=5s@0", "--drift", "2",
		// The receiver misses the identity poll at the open (booting):
		// both readers ask again until it answers.
		"--miss-monver", "1"}
	conf := func(dir string) string {
		cfg := SitegmConfig(t, dir, LoopbackNTP(t))
		raw, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, []byte(strings.Replace(string(raw), "[clock]\n",
			fmt.Sprintf("cable_delay = \"150ns\"\nleapfile = %q\n[clock]\n", FreshLeapFile(t, dir)), 1)), 0o644)
		return cfg
	}
	withDir, aloneDir := t.TempDir(), t.TempDir()
	withCfg, aloneCfg := conf(withDir), conf(aloneDir)
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", withCfg)
	StartGNSSSim(t, withDir, sim...)
	StartGNSSSim(t, aloneDir, sim...)

	alone := make(chan *commissionReport, 1)
	go func() { alone <- runCommission(t, aloneCfg, filepath.Join(aloneDir, "report"), 30*time.Second) }()
	sg.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
	// The status socket's document is the one commission reads: wait
	// until it, too, says LOCKED (it is refreshed once a second).
	WaitFor(t, 10*time.Second, "the status document LOCKED", func() bool {
		var st struct {
			Clock struct {
				State string `json:"state"`
			} `json:"clock"`
		}
		out, err := exec.Command(Bin(t, "sitegm"), "status", "-c", withCfg, "--json").Output()
		return err == nil && json.Unmarshal(out, &st) == nil && st.Clock.State == "LOCKED"
	})
	with := runCommission(t, withCfg, filepath.Join(withDir, "report"), 40*time.Second)

	for name, r := range map[string]*commissionReport{"daemon": with, "standalone": <-alone} {
		if r.Mode != name {
			t.Errorf("%s: mode %q", name, r.Mode)
		}
		if r.Receiver.Module != "ZED-F9T" || r.Receiver.Firmware == "" {
			t.Errorf("%s: receiver %+v (gnss-sim plays a ZED-F9T)", name, r.Receiver)
		}
		p := r.PPS
		if p.Expected < 20 || p.Missing != 0 || p.Counted < p.Expected {
			t.Errorf("%s: pulses %d of %d, %d missing", name, p.Counted, p.Expected, p.Missing)
		}
		if len(p.Edges) < p.Expected-2 {
			t.Errorf("%s: %d pulses in the series for %d counted", name, len(p.Edges), p.Counted)
		}
		// The jitter measured is the pulse's: gnss-sim's 30 ns, with the
		// sawtooth (+-8 ns) when nothing takes it off and the servo's
		// steering when the daemon leads; a factor of two either way
		// catches a measurement that is not the pulse's.
		if s := p.Residual.Sigma; s < jitter/2 || s > 2*jitter {
			t.Errorf("%s: jitter sigma %.1f ns, gnss-sim's is %.0f", name, s, jitter)
		}
		if p.Sawtooth == nil || p.Sawtooth.Max-p.Sawtooth.Min < 8 {
			t.Errorf("%s: sawtooth %+v (gnss-sim's is +-8 ns)", name, p.Sawtooth)
		}
		if v, f := r.check("delays.pulse"); v != "PASS" || r.Delays.Cable != 150 {
			t.Errorf("%s: delays %s %s (%d ns)", name, v, f, r.Delays.Cable)
		}
		for _, id := range []string{"pps.edges", "pps.jitter", "receiver.identity", "receiver.antenna", "leap.table"} {
			if v, f := r.check(id); v != "PASS" {
				t.Errorf("%s: %s is %s (%s)", name, id, v, f)
			}
		}
		// gnss-sim never loses its fix, but its NMEA reaches the reader
		// through a pty, whose bytes the kernel hands over in a worker
		// thread: in a make stress run (one CPU hogged, the gate's load
		// beside it) both simulators' NMEA stopped for 3 s at the same
		// instant, the pulses went on, and sitegm rightly said "no time
		// reports" (3 s of silence) for one second of each run. That is
		// the host holding the bytes, not the receiver: a WARN for at
		// most one such silence (3 s) is taken, a FAIL or a longer gap
		// is not. The thresholds themselves are unit tests
		// (internal/commission).
		if v, f := r.check("receiver.fix"); v != "PASS" && (v != "WARN" || r.Receiver.Seconds-r.Receiver.Fix > 3) {
			t.Errorf("%s: receiver.fix is %s (%s)", name, v, f)
		} else if v != "PASS" {
			t.Logf("%s: receiver.fix %s (%s): the host held the simulator's NMEA", name, v, f)
		}
		var ntpBudget bool
		for _, b := range r.Budgets {
			ntpBudget = ntpBudget || (b.Service == "NTP" && b.Verdict == "PASS")
		}
		if !ntpBudget {
			t.Errorf("%s: budgets %+v", name, r.Budgets)
		}
	}
	// With the daemon: the clock's offset from the pulse, after the cable
	// delay both sides agree on, is near zero; the clock judged LOCKED.
	if o := with.PPS.Offset; o == nil || math.Abs(o.Mean) > 3*jitter {
		t.Errorf("daemon: clock from the pulse %+v", with.PPS.Offset)
	}
	if v, f := with.check("clock.state"); v != "PASS" {
		t.Errorf("daemon: clock %s %s", v, f)
	}
	if v, _ := with.check("run.daemon"); v != "PASS" {
		t.Errorf("daemon: run.daemon %s", v)
	}
}
