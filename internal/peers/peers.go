// Package peers is what sitegm's tests need of the real peers they run
// against it, the integration tests (internal/itest) and the kernel lab
// (lab/guest) alike: linuxptp's and chrony's configurations for a peer
// that measures and never steers, and the reading of what they print.
package peers

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/facebook/time/leaphash"
)

// Ptp4lSlave is a ptp4l [global] section that measures and never steers:
// slave only, free running, software timestamps, UDP/IPv4, end to end. A
// free-running ptp4l reports an offset once per frequency estimation
// interval and prints a summary per summary interval: both at one Sync
// (2^-3 s) make it print "master offset" for every Sync it uses.
const Ptp4lSlave = `[global]
slaveOnly 1
free_running 1
time_stamping software
network_transport UDPv4
delay_mechanism E2E
logging_level 6
tx_timestamp_timeout 50
freq_est_interval 0
summary_interval -3
`

// Ptp4lOffset is one "master offset" line of ptp4l -m: its log time
// (CLOCK_MONOTONIC seconds), the offset (slave minus master) and path
// delay in ns.
type Ptp4lOffset struct {
	Mono          float64
	Offset, Delay float64
}

var ptp4lLine = regexp.MustCompile(`ptp4l\[(\d+\.\d+)\]: master offset\s+(-?\d+) s\d freq\s+[-+]?\d+ path delay\s+(-?\d+)`)

// Ptp4lOffsets reads every "master offset" line of ptp4l's output.
func Ptp4lOffsets(out string) []Ptp4lOffset {
	var res []Ptp4lOffset
	for _, m := range ptp4lLine.FindAllStringSubmatch(out, -1) {
		mono, _ := strconv.ParseFloat(m[1], 64)
		off, _ := strconv.ParseFloat(m[2], 64)
		delay, _ := strconv.ParseFloat(m[3], 64)
		res = append(res, Ptp4lOffset{Mono: mono, Offset: off, Delay: delay})
	}
	return res
}

var systemTime = regexp.MustCompile(`System time\s+:\s+([.0-9]+) seconds (slow|fast) of NTP time`)

// ChronySystemTime reads chronyc tracking's "System time": chronyd -x,
// which never steers the clock, says there by how much NTP time is ahead
// of the system clock (ns, positive when the clock is slow).
func ChronySystemTime(tracking string) (float64, bool) {
	m := systemTime.FindStringSubmatch(tracking)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	if m[2] == "fast" {
		v = -v
	}
	return v * 1e9, true
}

// P90 is the 90th percentile of |v|: the pass/fail figure of offsets
// against a truth. Software timestamps on a loaded machine give rare
// millisecond outliers (a delayed softirq) that would dominate an RMS
// over a few dozen samples; the RMS is reported alongside.
func P90(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	a := make([]float64, len(v))
	for i, x := range v {
		a[i] = math.Abs(x)
	}
	sort.Float64s(a)
	return a[int(0.9*float64(len(a)-1))]
}

// FreshLeapList is a leap-seconds.list (IERS/NIST format) with its expiry
// ("#@") moved to expires and its hash ("#h") recomputed: tests and the
// kernel lab judge sitegm on its own figures, not on the age of the
// machine's tzdata (Debian's copy here expired on 2026-06-28).
func FreshLeapList(list []byte, expires time.Time) []byte {
	const ntpEpoch = 2208988800 // 1900 to 1970, s
	var lines []string
	for _, l := range strings.Split(string(list), "\n") {
		switch {
		case strings.HasPrefix(l, "#@"):
			l = "#@\t" + strconv.FormatInt(expires.Unix()+ntpEpoch, 10)
		case strings.HasPrefix(l, "#h"):
			continue
		}
		lines = append(lines, l)
	}
	body := strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
	return []byte(body + "#h\t" + leaphash.Compute(body) + "\n")
}
