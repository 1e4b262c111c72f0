// Command gnss-sim plays a GNSS timing receiver: NMEA (and optionally UBX)
// paced like a serial line, to a pty, TCP clients or stdout, and each PPS
// edge as a chrony/gpsd SOCK sample. Its "true time" is the host clock plus
// an offset and a drift; it writes that truth as JSON lines so tests can
// measure what sitegm makes of it.
package main

import (
	"golang.org/x/sys/unix"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sitegm/clock/sim"
	"sitegm/hw/gnss"
	"sitegm/hw/pps"
	"sitegm/hw/serial"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	ptyLink, tcpAddr string
	stdout           bool
	baud             int
	ppsSock          string
	offset           time.Duration
	drift            float64
	ppsJitter        time.Duration
	ppsDelay         time.Duration
	qerr             time.Duration
	latency, latJit  time.Duration
	truth            string
	faults           multiFlag
	leap             string
	duration         time.Duration
	talker           string
	sentences        string
	ubx              bool
	seed             int64
	sats             int
	truthFrom        string
	taiUTC           int
	protocol, model  string
	control          bool
	leapUnknown      bool
	lsWrong          int
	noPUBX           bool
	missMonVer       int
}

// clockNow is the simulation's host clock: CLOCK_REALTIME, or with
// --truth-from the truth of a kernel module (see labClock).
var clockNow = time.Now

// labClock reads a truth that nothing in the machine can steer: the
// kernel lab's module prints "raw_ns truth_ns ..." (CLOCK_MONOTONIC_RAW
// and TAI at one instant); from it, UTC now is the truth advanced by
// CLOCK_MONOTONIC_RAW, less TAI-UTC. The receiver then names the seconds
// of the module's own pulse, whatever the disciplined clock under test
// does to CLOCK_REALTIME.
func labClock(path string, taiUTC int) (func() time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return nil, fmt.Errorf("%s: want \"raw_ns truth_ns ...\", got %q", path, b)
	}
	raw0, err1 := strconv.ParseInt(f[0], 10, 64)
	truth0, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s: want \"raw_ns truth_ns ...\", got %q", path, b)
	}
	utc0 := truth0 - int64(taiUTC)*int64(time.Second)
	return func() time.Time {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts)
		return time.Unix(0, utc0+ts.Nano()-raw0)
	}, nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func parseLatency(s string) (fixed, jitter time.Duration, err error) {
	a, b, hasJit := strings.Cut(s, ":")
	if fixed, err = time.ParseDuration(a); err != nil || fixed < 0 {
		return 0, 0, fmt.Errorf("--nmea-latency %q: want DUR[:JITTER]", s)
	}
	if hasJit {
		if jitter, err = time.ParseDuration(b); err != nil || jitter < 0 {
			return 0, 0, fmt.Errorf("--nmea-latency %q: bad jitter", s)
		}
	}
	return fixed, jitter, nil
}

func run(args []string) int {
	var o options
	fs := flag.NewFlagSet("gnss-sim", flag.ContinueOnError)
	fs.StringVar(&o.ptyLink, "pty-link", "", "create a pty and symlink its slave side to `PATH`")
	fs.StringVar(&o.tcpAddr, "tcp", "", "serve NMEA to TCP clients on `ADDR`")
	fs.BoolVar(&o.stdout, "stdout", false, "write NMEA to stdout")
	fs.IntVar(&o.baud, "baud", 9600, "pace output as a serial line at `N` baud (10 bits a byte)")
	fs.StringVar(&o.ppsSock, "pps-sock", "", "send each PPS edge as a SOCK sample to the unix datagram socket `PATH`")
	fs.DurationVar(&o.offset, "offset", 0, "true time minus host time at start")
	fs.Float64Var(&o.drift, "drift", 0, "true time runs faster than the host clock by `PPM`")
	fs.DurationVar(&o.ppsJitter, "pps-jitter", 0, "standard deviation of the PPS timestamp noise")
	fs.DurationVar(&o.ppsDelay, "pps-delay", 0, "the pulse reaches its timestamp this much after the true second (an antenna cable; sitegm's gnss.cable_delay takes it off)")
	fs.DurationVar(&o.qerr, "qerr", 0, "amplitude of the pulse quantisation sawtooth (reported in TIM-TP with --ubx)")
	lat := fs.String("nmea-latency", "100ms", "NMEA burst start after the edge it names: `DUR[:JITTER]` (uniform jitter)")
	fs.StringVar(&o.truth, "truth", "", "write the truth of every edge as JSON lines to `FILE`")
	fs.Var(&o.faults, "fault", "inject `KIND@START+LENGTH` (outage, nmea-silence, pps-silence, nofix, garbage, badsum, jump=DUR, antenna=open|short, jamming=LEVEL, spoofing; survey=DUR@START); repeatable")
	fs.StringVar(&o.leap, "leap", "", "a leap second at the end of `YYYY-MM-DD[:+1|:-1]`")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: run until SIGINT/SIGTERM)")
	fs.StringVar(&o.talker, "talker", "GN", "talker ID of time sentences")
	fs.StringVar(&o.sentences, "sentences", "RMC,GGA,GSA,GSV,ZDA", "sentences of each epoch, in order")
	fs.IntVar(&o.missMonVer, "miss-monver", 0, "leave the first `N` UBX MON-VER polls unanswered, as a receiver still booting or busy when asked does")
	fs.BoolVar(&o.noPUBX, "no-pubx", false, "ignore PUBX polls, as a receiver that is not a u-blox does (no leap second count in NMEA mode)")
	fs.IntVar(&o.lsWrong, "report-gps-utc", 0, "report `N` as the GPS-UTC leap second count (NAV-TIMELS, PUBX,04) instead of the true one: a receiver that contradicts the leap second table")
	fs.BoolVar(&o.leapUnknown, "leap-unknown", false, "the receiver has not read the leap second count yet: NAV-TIMELS says the firmware's default, PUBX,04 marks it D")
	fs.BoolVar(&o.ubx, "ubx", false, "with --protocol nmea, also send UBX TIM-TP (qErr of the next pulse) and NAV-TIMELS")
	fs.StringVar(&o.protocol, "protocol", "nmea", "what the receiver outputs: `nmea`, ubx (NAV-PVT, NAV-TIMEUTC, NAV-STATUS, NAV-TIMELS, TIM-TP, MON-HW or MON-RF, TIM-SVIN) or both")
	fs.StringVar(&o.model, "model", "zed-f9t", "the u-blox receiver it plays for MON-VER and configuration: `zed-f9t` (CFG-VALSET) or neo-m8t (legacy CFG messages)")
	fs.Int64Var(&o.seed, "seed", 1, "random seed")
	fs.IntVar(&o.sats, "sats", 9, "satellites used")
	fs.StringVar(&o.truthFrom, "truth-from", "", "take the true time from `FILE` (\"raw_ns truth_ns\", TAI: the kernel lab's module) instead of the host clock")
	fs.IntVar(&o.taiUTC, "tai-utc", 37, "TAI-UTC in seconds, with --truth-from")
	fs.BoolVar(&o.control, "control", false, "read faults from standard input, one `KIND+LENGTH` a line (as --fault, without @START), each starting at the next edge that is not yet computed; each is acknowledged on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.latency, o.latJit, err = parseLatency(*lat); err != nil {
		fmt.Fprintln(os.Stderr, "gnss-sim:", err)
		return 2
	}
	if o.truthFrom != "" {
		c, err := labClock(o.truthFrom, o.taiUTC)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gnss-sim:", err)
			return 2
		}
		clockNow = c
	}
	outs := 0
	for _, b := range []bool{o.ptyLink != "", o.tcpAddr != "", o.stdout} {
		if b {
			outs++
		}
	}
	if outs != 1 {
		fmt.Fprintln(os.Stderr, "gnss-sim: choose exactly one of --pty-link PATH, --tcp ADDR, --stdout")
		return 2
	}
	if _, ok := serial.Rates[o.baud]; !ok {
		fmt.Fprintf(os.Stderr, "gnss-sim: --baud %d is not a standard rate\n", o.baud)
		return 2
	}
	cfg := sim.ReceiverConfig{Offset: o.offset, DriftPPM: o.drift, PPSJitter: o.ppsJitter, QErr: o.qerr,
		Latency: o.latency, LatencyJitter: o.latJit, Seed: o.seed, Sats: o.sats}
	for _, f := range o.faults {
		ft, err := sim.ParseFault(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gnss-sim:", err)
			return 2
		}
		cfg.Faults = append(cfg.Faults, ft)
	}
	if o.leap != "" {
		l, err := sim.ParseLeap(o.leap)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gnss-sim:", err)
			return 2
		}
		cfg.Leap = &l
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	if err := simulate(ctx, o, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "gnss-sim:", err)
		return 1
	}
	return 0
}

// sink is where NMEA goes.
type sink interface {
	write(p []byte) // may drop when nobody reads: a serial line does too
	close()
}

type fileSink struct {
	f       *os.File
	link    string
	dropped int
}

func (s *fileSink) write(p []byte) {
	s.f.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := s.f.Write(p); err != nil {
		s.dropped++
	}
}

func (s *fileSink) close() {
	if s.link != "" {
		os.Remove(s.link)
	}
	s.f.Close()
}

// lockedSink serialises writes: bursts and answers to configuration
// frames share the line, a whole sentence or frame at a time.
type lockedSink struct {
	mu sync.Mutex
	s  sink
}

func (l *lockedSink) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s.write(p)
}

func (l *lockedSink) close() { l.s.close() }

type stdoutSink struct{}

func (stdoutSink) write(p []byte) { os.Stdout.Write(p) }
func (stdoutSink) close()         {}

type tcpSink struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func (s *tcpSink) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
	}
}

func (s *tcpSink) write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Write(p); err != nil {
			c.Close()
			delete(s.conns, c)
		}
	}
}

func (s *tcpSink) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

func openSink(o options) (sink, error) {
	switch {
	case o.ptyLink != "":
		m, slave, err := serial.OpenPTY()
		if err != nil {
			return nil, err
		}
		os.Remove(o.ptyLink)
		if err := os.Symlink(slave, o.ptyLink); err != nil {
			m.Close()
			return nil, err
		}
		fmt.Printf("gnss-sim: NMEA on %s (link %s)\n", slave, o.ptyLink)
		return &fileSink{f: m, link: o.ptyLink}, nil
	case o.tcpAddr != "":
		ln, err := net.Listen("tcp", o.tcpAddr)
		if err != nil {
			return nil, err
		}
		fmt.Printf("gnss-sim: NMEA on tcp://%s\n", ln.Addr())
		s := &tcpSink{ln: ln, conns: map[net.Conn]bool{}}
		go s.accept()
		return s, nil
	}
	return stdoutSink{}, nil
}

func labelString(s sim.Second) string {
	r := gnss.Report{Time: s.Label, HasDate: true, Leap60: s.Leap60}
	return r.UTCString()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(clockNow())
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type burst struct {
	at    time.Time
	bytes []byte
}

func simulate(ctx context.Context, o options, cfg sim.ReceiverConfig) error {
	out, err := openSink(o)
	if err != nil {
		return err
	}
	defer out.close()
	var truth *json.Encoder
	if o.truth != "" {
		f, err := os.Create(o.truth)
		if err != nil {
			return err
		}
		defer f.Close()
		truth = json.NewEncoder(f)
	}
	var pc net.Conn
	ppsWarned := false
	sendPPS := func(b []byte) {
		if pc == nil {
			c, err := net.Dial("unixgram", o.ppsSock)
			if err != nil {
				if !ppsWarned {
					fmt.Fprintf(os.Stderr, "gnss-sim: PPS socket %s: %v (retrying each edge)\n", o.ppsSock, err)
					ppsWarned = true
				}
				return
			}
			pc = c
		}
		if _, err := pc.Write(b); err != nil {
			pc.Close()
			pc = nil
		}
	}
	defer func() {
		if pc != nil {
			pc.Close()
		}
	}()

	types := strings.Split(o.sentences, ",")
	rx, err := newUblox(o.model, o.protocol, o.baud, o.ubx)
	if rx != nil {
		rx.leapUnknown, rx.lsWrong, rx.noPUBX = o.leapUnknown, o.lsWrong, o.noPUBX
		rx.missMonVer = o.missMonVer
	}
	if err != nil {
		return err
	}
	// What the receiver is sent (on the pty) is answered at once, between
	// the frames of the bursts.
	out = &lockedSink{s: out}
	if fsk, ok := out.(*lockedSink).s.(*fileSink); ok {
		go rx.listen(ctx, fsk.f, out.write)
	}
	bursts := make(chan burst, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeBursts(ctx, out, bursts, rx.lineBaud)
	}()
	defer wg.Wait()
	defer close(bursts)

	rng := rand.New(rand.NewSource(cfg.Seed + 1))
	cfg.Start = clockNow()
	seconds := sim.NewReceiver(cfg)
	var control <-chan sim.Fault
	if o.control {
		control = readControl(os.Stdin)
	}
	next := seconds.Next()
	for {
		s := next
		// A fault asked for now begins with the edge computed next
		// (within two seconds): the one after s is already computed.
	drain:
		for {
			select {
			case f := <-control:
				f = seconds.Inject(f, s.EdgeHost.Add(time.Millisecond))
				fmt.Fprintf(os.Stderr, "gnss-sim: control: fault %s for %v from %v after the start\n", f.Kind, f.Length, f.Start.Round(time.Millisecond))
			default:
				break drain
			}
		}
		next = seconds.Next()
		if !sleepUntil(ctx, s.EdgeHost) {
			return nil
		}
		leapFlag := 0
		if cfg.Leap != nil {
			if d := cfg.Leap.Day; !s.Label.Before(d) && s.Label.Before(d.AddDate(0, 0, 1)) {
				leapFlag = map[int]int{1: 1, -1: 2}[cfg.Leap.Sign]
			}
		}
		s.Stamp = s.Stamp.Add(o.ppsDelay) // what a capture of the late pulse reads
		if s.PPS && o.ppsSock != "" {
			sendPPS(pps.NewEdgeSample(s.Stamp, s.Label, leapFlag).Marshal())
		}
		if truth != nil {
			truth.Encode(s.Truth(labelString(s)))
		}
		if !s.NMEA {
			continue
		}
		var b []byte
		if s.Garbage {
			g := make([]byte, 20+rng.Intn(60))
			rng.Read(g)
			b = append(b, g...)
		}
		b = append(b, rx.epoch(s, next, cfg, types, o.talker)...)
		if s.BadSum {
			b = corruptChecksums(b)
		}
		select {
		case bursts <- burst{at: s.NMEAAt, bytes: b}:
		default: // the writer is far behind (a huge latency): drop, as a full UART would
		}
	}
}

// readControl reads --control's faults from r, one KIND+LENGTH a line; a
// line it cannot read is said on stderr and skipped.
func readControl(r io.Reader) <-chan sim.Fault {
	c := make(chan sim.Fault, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			kind, length, ok := strings.Cut(line, "+")
			f, err := sim.ParseFault(kind + "@0s+" + length)
			if !ok || err != nil {
				fmt.Fprintf(os.Stderr, "gnss-sim: control: %q: want KIND+LENGTH (%v)\n", line, err)
				continue
			}
			c <- f
		}
	}()
	return c
}

// corruptChecksums flips the first checksum digit of every sentence.
func corruptChecksums(b []byte) []byte {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '*' && b[i+2] != '*' {
			if b[i+1] == '0' {
				b[i+1] = '1'
			} else {
				b[i+1] = '0'
			}
		}
	}
	return b
}

// writeBursts writes each burst at its time, one byte-time (10 bits) per
// byte at the line rate, a sentence at a time. A burst that starts late
// (the previous one still going) starts when the line is free, as on a
// real UART.
func writeBursts(ctx context.Context, out sink, bursts <-chan burst, baud func() int) {
	for bu := range bursts {
		if !sleepUntil(ctx, bu.at) {
			return
		}
		// The rate is the port's now: a configuration may change it.
		byteTime := time.Duration(10 * float64(time.Second) / float64(baud()))
		t := clockNow()
		rest := bu.bytes
		for len(rest) > 0 {
			// One sentence (to its LF) or binary frame per write.
			n := len(rest)
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				n = i + 1
			}
			out.write(rest[:n])
			t = t.Add(time.Duration(n) * byteTime)
			rest = rest[n:]
			if !sleepUntil(ctx, t) {
				return
			}
		}
	}
}
