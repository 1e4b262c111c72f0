// Command guest runs the kernel lab's scenarios inside the QEMU guest
// (lab boots it): it loads the test PHC and PPS module, runs
// sitegm against it with real peers, judges every figure against the
// module's truth and prints one "LAB-RESULT {json}" line per scenario on
// the console.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sitegm/internal/status"
	"sitegm/lab"

	"golang.org/x/sys/unix"
)

// params are the module's, from the kernel command line.
type params struct {
	freqPPB, widthMS, jitterNS, qerrNS int64
	// freq2PPB is the second PHC's natural error (second-phc).
	freq2PPB int64
	// delayNS is the pulse's lateness in the delays scenario (the others
	// load the module without one).
	delayNS int64
	only    map[string]bool
}

func readParams() params {
	p := params{freqPPB: 25000, freq2PPB: -15000, widthMS: 100, jitterNS: 20, delayNS: 150}
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, "lab.") {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "lab.freq":
			p.freqPPB = n
		case "lab.freq2":
			p.freq2PPB = n
		case "lab.width":
			p.widthMS = n
		case "lab.jitter":
			p.jitterNS = n
		case "lab.qerr":
			p.qerrNS = n
		case "lab.delay":
			p.delayNS = n
		case "lab.only":
			p.only = map[string]bool{}
			for _, s := range strings.Split(v, ",") {
				p.only[s] = true
			}
		}
	}
	return p
}

// sh runs a command and returns its output; failure is an error with it.
func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func must(out string, err error) string {
	if err != nil {
		panic(err)
	}
	return out
}

// proc is a background process with its output kept.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

type lockedBuf struct{ p *proc }

func (w lockedBuf) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// debugLogs are the processes of the running scenario, printed when it
// fails.
var debugLogs []struct {
	name string
	p    *proc
}

// story is what a failed scenario's process said: every line but the
// periodic status lines (its events: a step, a jump alarm, a pairing
// problem) and the last tail lines whatever they are, at most n lines in
// all (the latest kept). A tail alone showed only a minute of identical
// status lines and hid the event that explained them.
func story(s string, n, tail int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	var out []string
	for i, line := range l {
		if i >= len(l)-tail || !strings.Contains(line, " event=status ") {
			out = append(out, line)
		}
	}
	if len(out) > n {
		out = append([]string{fmt.Sprintf("(%d earlier lines left out)", len(out)-n)}, out[len(out)-n:]...)
	}
	return strings.Join(out, "\n")
}

func start(name string, args ...string) *proc {
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	debugLogs = append(debugLogs, struct {
		name string
		p    *proc
	}{strings.Join(append([]string{name}, args...), " "), p})
	p.cmd.Stdout, p.cmd.Stderr = lockedBuf{p}, lockedBuf{p}
	if err := p.cmd.Start(); err != nil {
		panic(fmt.Errorf("start %s: %w", name, err))
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls cond every 200 ms up to timeout.
func waitFor(timeout time.Duration, what string, cond func() bool) {
	waitForThen(timeout, func() string { return what }, cond)
}

// waitForThen is waitFor whose description is made when it times out
// (what a process said by then, not at the start of the wait).
func waitForThen(timeout time.Duration, what func() string, cond func() bool) {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	panic(fmt.Errorf("timed out after %v waiting for %s", timeout, what()))
}

// --- the module ---

const debugDir = "/sys/kernel/debug/sitegm_lab"

// labDev are the module's devices: the PHC with the pulse, the PPS
// device, and the second PHC (phc1, with phcs=2).
type labDev struct{ phc, pps, phc1 string }

func loadModule(p params) labDev { return loadModuleWith(p, 0, 1) }

// loadModuleDelay loads the module with its pulse delayNS late.
func loadModuleDelay(p params, delayNS int64) labDev { return loadModuleWith(p, delayNS, 1) }

// loadModuleWith loads the module with its pulse delayNS late and phcs
// PHCs.
func loadModuleWith(p params, delayNS int64, phcs int) labDev {
	must(sh("insmod", "/lib/modules/sitegm_lab.ko", fmt.Sprintf("freq_error_ppb=%d", p.freqPPB),
		fmt.Sprintf("width_ms=%d", p.widthMS), fmt.Sprintf("jitter_ns=%d", p.jitterNS), fmt.Sprintf("qerr_ns=%d", p.qerrNS),
		fmt.Sprintf("delay_ns=%d", delayNS), fmt.Sprintf("phcs=%d", phcs), fmt.Sprintf("freq_error2_ppb=%d", p.freq2PPB)))
	var d labDev
	waitFor(5*time.Second, "the module's devices", func() bool {
		d = findDevices()
		return d.phc != "" && d.pps != "" && (phcs < 2 || d.phc1 != "")
	})
	return d
}

func findDevices() labDev {
	var d labDev
	for _, c := range globNames("/sys/class/ptp/ptp*/clock_name") {
		b, _ := os.ReadFile(c)
		switch strings.TrimSpace(string(b)) {
		case "sitegm_lab":
			d.phc = "/dev/" + filepath.Base(filepath.Dir(c))
		case "sitegm_lab1":
			d.phc1 = "/dev/" + filepath.Base(filepath.Dir(c))
		}
	}
	for _, c := range globNames("/sys/class/pps/pps*/name") {
		if b, _ := os.ReadFile(c); strings.TrimSpace(string(b)) == "sitegm_lab" {
			d.pps = "/dev/" + filepath.Base(filepath.Dir(c))
		}
	}
	if _, err := os.Stat(d.phc); err != nil {
		d.phc = ""
	}
	if _, err := os.Stat(d.pps); err != nil {
		d.pps = ""
	}
	if _, err := os.Stat(d.phc1); err != nil {
		d.phc1 = ""
	}
	return d
}

func globNames(p string) []string {
	m, _ := filepath.Glob(p)
	return m
}

func unloadModule() {
	if _, err := os.Stat("/sys/module/sitegm_lab"); err != nil {
		return // not loaded (a scenario unloaded it itself)
	}
	for i := 0; i < 50; i++ {
		if _, err := sh("rmmod", "sitegm_lab"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample is one reading of the module: raw, truth (TAI), PHC,
// CLOCK_REALTIME and the second PHC (0 without one) at one instant, ns.
type sample struct{ raw, truth, phc, real, phc1 int64 }

func readNow() sample {
	b, err := os.ReadFile(debugDir + "/now")
	if err != nil {
		panic(err)
	}
	var s sample
	fmt.Sscan(string(b), &s.raw, &s.truth, &s.phc, &s.real, &s.phc1)
	return s
}

func writeDebug(name, v string) {
	if err := os.WriteFile(debugDir+"/"+name, []byte(v), 0); err != nil {
		panic(err)
	}
}

const taiUTC = 37 * int64(time.Second)

// kernelSync checks what sitegm told the guest's kernel of CLOCK_REALTIME
// once it is LOCKED (adjtimex: STA_UNSYNC, maxerror; what timedatectl
// and the kernel's RTC update read): synchronized, and the clock within
// the maximum error the kernel holds of the truth.
func kernelSync(r *lab.Result) {
	tx := unix.Timex{}
	_, err := unix.ClockAdjtime(unix.CLOCK_REALTIME, &tx)
	now := readNow()
	off := math.Abs(float64(now.real - (now.truth - taiUTC)))
	r.Figures["kernel_maxerror_us"] = float64(tx.Maxerror)
	if err != nil || tx.Status&unix.STA_UNSYNC != 0 || off > float64(tx.Maxerror)*1000 {
		r.Pass = false
		r.Notes = append(r.Notes, fmt.Sprintf("the kernel: status %#x maxerror %d us (%v), CLOCK_REALTIME %.0f ns off", tx.Status, tx.Maxerror, err, off))
	}
}

// --- sitegm ---

type sitegm struct {
	dir  string
	p    *proc
	gsim *proc
}

// startGNSSSim runs the receiver: NMEA through a pty, naming the seconds
// of the module's truth (the module must be loaded); extra are more of
// gnss-sim's options.
func (s *sitegm) startGNSSSim(extra ...string) {
	s.gsim = start("/bin/gnss-sim", append([]string{"--pty-link", s.dir + "/gnss", "--baud", "115200",
		"--truth-from", debugDir + "/now", "--nmea-latency", "150ms:20ms"}, extra...)...)
}

// startSitegm writes a configuration (gnss-sim's pty and the status
// socket in dir, the given [gnss] pps, [clock] and tables) and runs sitegm
// and gnss-sim; prefix runs them in a network namespace ("ip netns exec
// NS").
func startSitegm(dir, pps, clock, tables string, prefix ...string) *sitegm {
	s := runSitegm(writeConfig(dir, pps, "", clock, tables), prefix...)
	if _, err := os.Stat(debugDir + "/now"); err == nil {
		s.startGNSSSim()
	}
	return s
}

// runSitegm runs sitegm on dir's configuration (writeConfig), without a
// receiver.
func runSitegm(dir string, prefix ...string) *sitegm {
	args := append(append([]string{}, prefix...), "/bin/sitegm", "run", "-c", dir+"/sitegm.toml")
	s := &sitegm{dir: dir}
	s.p = start(args[0], args[1:]...)
	return s
}

// writeConfig writes dir/sitegm.toml (startSitegm's; gnss are more [gnss]
// keys) and returns dir.
func writeConfig(dir, pps, gnss, clock, tables string) string {
	os.MkdirAll(dir, 0o755)
	cfg := fmt.Sprintf(`[gnss]
device = "%[1]s/gnss"
baud = 115200
pps = "%[2]s"
pps_width = "%[5]dms"
%[6]s
[clock]
drift_file = "%[1]s/drift"
%[3]s
%[4]s
[log]
target = "stderr"
status_interval = "1s"
[status]
socket = "%[1]s/status.sock"
`, dir, pps, clock, tables, pulseWidthMS, gnss)
	os.WriteFile(dir+"/sitegm.toml", []byte(cfg), 0o644)
	return dir
}

func (s *sitegm) stop() {
	if s.gsim != nil {
		s.gsim.stop()
	}
	s.p.stop()
}

func (s *sitegm) status() (*status.Status, error) {
	c, err := net.DialTimeout("unix", s.dir+"/status.sock", time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var st status.Status
	if err := json.NewDecoder(c).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (s *sitegm) waitState(timeout time.Duration, state string, class int) *status.Status {
	var st *status.Status
	what := func() string {
		return fmt.Sprintf("sitegm %s class %d (last said: %s)", state, class, lastLines(s.p.output(), 2))
	}
	waitForThen(timeout, what, func() bool {
		var err error
		st, err = s.status()
		return err == nil && st.Clock.State == state && st.Clock.ClockClass == class
	})
	return st
}

// waitSettled waits for n status readings in a row whose servo offset
// estimate is within bound: a clock just LOCKED may still be pulling its
// phase in, and a steady-state figure is measured after that.
func (s *sitegm) waitSettled(timeout time.Duration, n int, bound time.Duration) {
	run := 0
	waitFor(timeout, fmt.Sprintf("%d readings in a row with the servo within %v", n, bound), func() bool {
		st, err := s.status()
		if err != nil || time.Duration(st.Clock.OffsetNS).Abs() > bound {
			run = 0
			return false
		}
		run++
		time.Sleep(800 * time.Millisecond) // about one reading a second (waitFor polls every 200 ms)
		return run >= n
	})
}

func (s *sitegm) has(event string) bool { return strings.Contains(s.p.output(), "event="+event) }

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// --- scenarios ---

type scenario struct {
	name string
	run  func(p params, r *lab.Result)
}

var scenarios []scenario // scenarios.go

// pulseWidthMS is the module's pulse width, which sitegm is told
// (gnss.pps_width) as a site engineer tells it the receiver's.
var pulseWidthMS int64 = 100

func main() {
	p := readParams()
	pulseWidthMS = p.widthMS
	base, _ := os.ReadFile("/lib/modules/order")
	for _, m := range strings.Fields(string(base)) {
		sh("insmod", "/lib/modules/"+m)
	}
	for _, sc := range scenarios {
		if p.only != nil && !p.only[sc.name] {
			continue
		}
		r := lab.Result{Name: sc.name, Figures: map[string]any{}}
		setSystemFreq(0) // what an earlier scenario's sitegm left
		t0 := time.Now()
		func() {
			defer func() {
				if e := recover(); e != nil {
					r.Pass, r.Error = false, fmt.Sprint(e)
				}
			}()
			sc.run(p, &r)
		}()
		r.Seconds = time.Since(t0).Seconds()
		if !r.Pass {
			// The whole story for whoever reads the console log.
			fmt.Fprintf(os.Stderr, "--- %s failed: %s\n", sc.name, r.Error)
			for _, d := range debugLogs {
				fmt.Fprintf(os.Stderr, "--- %s\n%s\n", d.name, story(d.p.output(), 200, 10))
			}
		}
		debugLogs = nil
		unloadModule()
		b, _ := json.Marshal(r)
		fmt.Printf("LAB-RESULT %s\n", b)
	}
}

// measure reads the module every second for n seconds: PHC and
// CLOCK_REALTIME against the truth, with sitegm's advertised bound.
type errs struct {
	phc, sys, bound []float64 // ns
	// est and noise are sitegm's own view at each sample (its offset
	// estimate, its measured PPS noise), for a failure's notes: a bound
	// exceeded with est near zero is a bias the samples carry, with est
	// large a servo that lags.
	est, noise []float64
}

func (s *sitegm) measure(n int) errs {
	e, _ := s.measureWithSystem(n)
	return e
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		if x < 0 {
			x = -x
		}
		m = max(m, x)
	}
	return m
}

func within(v, bound []float64) (n int) {
	for i := range v {
		if v[i] <= bound[i] && v[i] >= -bound[i] {
			n++
		}
	}
	return n
}
