package itest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// truthAt interpolates gnss-sim's UTC-minus-host at host time h (ns).
func truthAt(tr []Truth, h int64) (float64, bool) {
	for i := 1; i < len(tr); i++ {
		a, b := tr[i-1], tr[i]
		// gnss-sim's drift is constant, so the last second's slope also
		// carries the truth up to 2 s past the last edge written: a
		// reading taken "now" is compared with the truth now, not with
		// the truth at an earlier edge (2 ppm is 2 us a second).
		last := i == len(tr)-1 && h > b.EdgeHostNS && h-b.EdgeHostNS <= 2e9
		if a.EdgeHostNS <= h && h <= b.EdgeHostNS || last {
			f := float64(h-a.EdgeHostNS) / float64(b.EdgeHostNS-a.EdgeHostNS)
			return float64(a.UTCMinusHost) + f*float64(b.UTCMinusHost-a.UTCMinusHost), true
		}
	}
	return 0, false
}

// sitegm on a virtual clock, disciplined from gnss-sim (NMEA on a pty, PPS
// over SOCK) that runs 250 ms and 5 ppm away from the host clock: once
// locked, the virtual clock reads TAI = true UTC + 37 s to within a
// microsecond, and the drift file written at exit holds the 5 ppm.
func TestClockFollowsGNSSSim(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	cfg := SitegmConfig(t, dir, LoopbackNTP(t))
	sitegm := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	sitegm.WaitEvent(t, 0, 20*time.Second, "start")
	truthPath := filepath.Join(dir, "truth.json")
	Start(t, Bin(t, "gnss-sim"), "--pty-link", filepath.Join(dir, "gnss"), "--baud", "115200",
		"--pps-sock", filepath.Join(dir, "pps.sock"), "--truth", truthPath,
		"--offset", "250ms", "--drift", "5", "--pps-jitter", "50ns", "--nmea-latency", "150ms:50ms")
	_, locked := sitegm.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
	// 15 status lines (one a second) after the lock, however long the
	// machine takes to print them.
	WaitCount(t, 90*time.Second, "status lines after the lock", 15, func() int { return len(sitegm.Lines(locked, "msg", "status")) })
	if !sitegm.Stop(5 * time.Second) {
		t.Fatal("sitegm did not stop")
	}
	truth := ReadTruth(t, truthPath)
	var worst, sum float64
	n := 0
	for _, st := range sitegm.Lines(locked, "msg", "status") {
		if st["clock_state"] != "LOCKED" {
			t.Errorf("status after the lock: %v", st)
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, st["time"])
		if err != nil {
			continue
		}
		cmh, err := strconv.ParseInt(st["clock_minus_host_ns"], 10, 64)
		if err != nil {
			t.Fatalf("status without clock_minus_host_ns: %v", st)
		}
		want, ok := truthAt(truth, tm.UnixNano())
		if !ok {
			continue
		}
		e := float64(cmh) - 37e9 - want
		t.Logf("%s err %.0f ns offset %s meas %s freq %s", st["time"], e, st["offset_ns"], st["meas_noise_ns"], st["freq_ppb"])
		worst = math.Max(worst, math.Abs(e))
		sum += e * e
		n++
	}
	if n < 8 {
		t.Fatalf("only %d locked status lines to compare", n)
	}
	rms := math.Sqrt(sum / float64(n))
	t.Logf("virtual clock vs gnss-sim truth over %d s: rms %.0f ns, worst %.0f ns", n, rms, worst)
	if worst > 500 {
		t.Errorf("virtual clock off the truth by up to %.0f ns", worst)
	}
	b, err := os.ReadFile(filepath.Join(dir, "drift"))
	if err != nil {
		t.Fatalf("no drift file at exit: %v", err)
	}
	var freq float64
	fmt.Sscanf(string(b), `{"freq_ppb":%g`, &freq)
	if math.Abs(freq-5000) > 50 {
		t.Errorf("drift file says %v ppb, the simulation drifts 5000 ppb: %s", freq, b)
	}
}
