package itest

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A box that boots with its clock a month wrong, fed by gpsd over SOCK:
// gpsd's offset is the true time minus that wrong local clock, a month in
// each sample. sitegm steps once onto GNSS (one clock_stepped, logged with
// the step), locks, and until then serves nothing as synchronized: an NTP
// client asking ten times a second from the start gets LI 3 before the
// lock and the true time after it. On the virtual clock, which runs over
// the host's, "the local clock a month behind" is the receiver a month
// ahead of the host (gnss-sim --offset); the kernel's own clocks far off
// are the kernel lab's boot-clock scenario.
func TestSOCKFromAClockFarOff(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	for _, c := range []struct {
		name, offset string
		floor        string // gnss.date_floor, when the receiver's date is before the build's
	}{
		{"local clock a month behind", "720h", ""},
		// The receiver is a month before the host's date, which may be
		// before the build date that is the default floor: a box whose
		// clock runs ahead is told the floor its receiver can honestly be
		// at (the build date of this test's binary is today).
		{"local clock a month ahead", "-720h", time.Now().AddDate(0, 0, -40).Format("2006-01-02")},
	} {
		t.Run(c.name, func(t *testing.T) {
			Parallel(t)
			farOffBoot(t, c.offset, c.floor)
		})
	}
}

func farOffBoot(t *testing.T, offset, floor string) {
	dir := t.TempDir()
	port := FreePort(t, "udp")
	cfg := SitegmConfig(t, dir, fmt.Sprintf("[[ntp]]\ninterface = \"lo\"\nport = %d\nrate_interval = \"0s\"\n", port))
	if floor != "" {
		b, _ := os.ReadFile(cfg)
		raw := strings.Replace(string(b), "[gnss]\n", fmt.Sprintf("[gnss]\ndate_floor = %q\n", floor), 1)
		WriteFile(t, dir, "sitegm.toml", raw)
	}
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	sg.WaitEvent(t, 0, 20*time.Second, "start")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	probe := runNTPProbe(ctx, c, fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
	synced := func() (n int) {
		probe.mu.Lock()
		defer probe.mu.Unlock()
		for _, e := range probe.exchanges {
			if e.li != 3 {
				n++
			}
		}
		return n
	}
	truthPath := dir + "/truth.json"
	StartGNSSSim(t, dir, "--offset", offset, "--pps-jitter", "50ns")
	sg.WaitEvent(t, 0, 90*time.Second, "clock_state", "clock_state", "LOCKED")
	// Ten synchronized answers after the lock, however long that takes.
	WaitCount(t, 60*time.Second, "synchronized NTP answers", 10, synced)
	stop()
	probe.mu.Lock()
	answers := append([]exchange(nil), probe.exchanges...)
	probe.mu.Unlock()
	steps := sg.Lines(0, "event", "clock_stepped")
	if len(steps) != 1 {
		t.Errorf("%d clock_stepped events, want exactly one: %v", len(steps), steps)
	} else {
		step, _ := time.ParseDuration(steps[0]["step"])
		want, _ := time.ParseDuration(offset)
		if (step - want).Abs() > time.Second {
			t.Errorf("stepped %v, the clock was %v off", step, want)
		}
		t.Logf("stepped %v once (%v off)", step, want)
	}
	truth := ReadTruth(t, truthPath)
	unsynced, good, worst := 0, 0, 0.0
	for _, a := range answers {
		if a.li == 3 {
			unsynced++
			continue
		}
		// Whatever the path, an honest server's transmit time lies
		// between the client's send and receipt, on the true UTC.
		out, ok := a.outside(func(h time.Time) (float64, bool) { return truthAt(truth, h.UnixNano()) })
		if !ok {
			continue // before the first edge or after the last written
		}
		good++
		worst = math.Max(worst, float64(out))
	}
	t.Logf("NTP answers: %d unsynchronized (before the lock), %d synchronized, worst %.0f ns outside [send, receipt]", unsynced, good, worst)
	// A millisecond: what NTP clients are owed; the error this test is
	// about is a month.
	if good < 5 || worst > 1e6 {
		t.Errorf("synchronized answers: %d, worst %.0f ns outside the exchange", good, worst)
	}
}
