package itest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sitegm/internal/peers"
)

// The UTC offset policy on the wire (docs/clock.md, "The UTC offset when
// the table is old"), one case a subtest: the leap second table current
// or expired, the receiver NMEA only (silent about the leap count), UBX
// with the count, or UBX with the firmware's default count. A ptp4l
// follower's TIME_PROPERTIES_DATA_SET (what sitegm's Announces carried)
// shows currentUtcOffset 37 valid in every case and timeTraceable only
// where TAI-UTC is known; the follower's UTC (its offsets, with the UTC
// offset it takes) is the truth in every case: an expired table once
// cleared the valid flag and put such followers 37 s off.
func TestUTCOffsetPolicyOnTheWire(t *testing.T) {
	Parallel(t)
	needTools(t, "ptp4l", "pmc")
	list, err := os.ReadFile("/usr/share/zoneinfo/leap-seconds.list")
	if err != nil {
		t.Skipf("no leap-seconds.list (tzdata): %v", err)
	}
	for _, c := range []struct {
		name      string
		table     string   // "current", "expired" or "none" (no leap-seconds.list: right/UTC or the built-in copy, expiry unknown)
		sim       []string // gnss-sim's receiver: NMEA only, with --ubx UBX too
		traceable string
	}{
		{"table current, NMEA only", "current", []string{"--no-pubx"}, "1"},
		{"table expired, NMEA only", "expired", []string{"--no-pubx"}, "0"},
		{"table expired, NMEA-mode u-blox answering PUBX,04", "expired", nil, "1"},
		{"table expired, receiver confirms", "expired", []string{"--ubx"}, "1"},
		{"table expired, receiver's count a default", "expired", []string{"--ubx", "--leap-unknown"}, "0"},
		{"no table file, receiver confirms", "none", []string{"--ubx"}, "1"},
		{"table current, receiver contradicts it", "current", []string{"--ubx", "--report-gps-utc", "19"}, "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			Parallel(t)
			expires := time.Now().AddDate(1, 0, 0)
			if c.table == "expired" {
				expires = time.Now().AddDate(0, -1, 0)
			}
			lab := NewLab(t)
			gm := lab.Host("gm", "10.88.0.1/24")
			au := lab.Host("au", "10.88.0.2/24")
			dir := t.TempDir()
			leapFile := WriteFile(t, dir, "leap-seconds.list", string(peers.FreshLeapList(list, expires)))
			if c.table == "none" {
				leapFile = filepath.Join(dir, "no-such-file") // tzdata's right/UTC then, or the built-in copy
			}
			cfg := SitegmConfig(t, dir, "[[ptp]]\ninterface = \"eth0\"\ntimestamping = \"software\"\ndante_v1 = false\n")
			b, _ := os.ReadFile(cfg)
			os.WriteFile(cfg, []byte(strings.Replace(string(b), "[gnss]\n", fmt.Sprintf("[gnss]\nleapfile = %q\n", leapFile), 1)), 0o644)
			sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
			args := append([]string{"--pty-link", filepath.Join(dir, "gnss"), "--baud", "115200",
				"--pps-sock", filepath.Join(dir, "pps.sock"), "--truth", filepath.Join(dir, "truth.json")}, c.sim...)
			Start(t, Bin(t, "gnss-sim"), args...)
			uds := filepath.Join(dir, "ptp4l")
			sl := au.Start(t, "ptp4l", "-f", Ptp4lConfig(t, dir, "slave.conf", Ptp4lSlaveConf+"uds_address "+uds+"\n"), "-i", "eth0", "-m")
			sg.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
			tds := func() map[string]string {
				out, _ := au.Run("pmc", "-u", "-b", "0", "-s", uds, "GET TIME_PROPERTIES_DATA_SET")
				f := map[string]string{}
				for _, l := range strings.Split(out, "\n") {
					if w := strings.Fields(l); len(w) == 2 {
						f[w[0]] = w[1]
					}
				}
				return f
			}
			// Twenty offsets after the lock (a few seconds: a NAV-TIMELS
			// every five), then the follower's view of the Announces.
			mark := len(sl.Output())
			WaitCount(t, 60*time.Second, "ptp4l offsets after the lock", 20, func() int { return len(peers.Ptp4lOffsets(sl.Output()[mark:])) })
			var tp map[string]string
			// sitegm polls PUBX,04 every 10 s; a NAV-TIMELS comes every 5.
			WaitFor(t, 30*time.Second, "the follower's time properties with timeTraceable "+c.traceable, func() bool {
				tp = tds()
				return tp["timeTraceable"] == c.traceable || c.traceable == "0" && tp["timeTraceable"] != ""
			})
			if tp["currentUtcOffset"] != "37" || tp["currentUtcOffsetValid"] != "1" || tp["timeTraceable"] != c.traceable || tp["ptpTimescale"] != "1" {
				t.Errorf("the follower's TIME_PROPERTIES_DATA_SET: %v", tp)
			}
			// ptp4l's offsets: its UTC (PTP time less the offset it takes)
			// minus its clock, the host's, which gnss-sim's truth is.
			offs := peers.Ptp4lOffsets(sl.Output()[mark:])
			var v []float64
			for _, o := range offs[len(offs)/2:] {
				v = append(v, o.Offset)
			}
			sort.Float64s(v)
			med := v[len(v)/2]
			t.Logf("follower: %v; median offset %.0f ns over %d", tp, med, len(v))
			// The errors this is about are whole seconds; 100 µs is the
			// parallel group's path on veth with room.
			if med > 100e3 || med < -100e3 {
				t.Errorf("the follower's UTC is %.0f ns off the truth", med)
			}
		})
	}
}
