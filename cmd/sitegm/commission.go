package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/hw/claim"
	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
	"sitegm/hw/nic"
	"sitegm/hw/ntpnet"
	"sitegm/hw/pps"
	"sitegm/hw/serial"
	"sitegm/internal/commission"
	"sitegm/internal/config"
	"sitegm/internal/monitor"
	"sitegm/internal/status"
	"sitegm/internal/version"
	"sitegm/ntp"
)

// cmdCommission watches the site box for a while with the configuration
// it serves and writes the commissioning report (internal/commission
// judges; this wires the readers): with sitegm running, from its status
// socket once a second; without, from the receiver and the pulse
// directly. Either way it compares the PHC with the system clock and
// reads every served interface's link and timestamping itself.
func cmdCommission(args []string) int {
	fs := flag.NewFlagSet("commission", flag.ContinueOnError)
	path := fs.String("c", defaultConfig, "configuration `FILE` (the one the site serves)")
	dur := fs.Duration("duration", 10*time.Minute, "how long to watch (10s to 24h)")
	out := fs.String("out", "", "write `PREFIX`.html and PREFIX.json (default: sitegm-commission-HOST-TIME in the current directory)")
	sock := fs.String("socket", "", "the daemon's status socket (default: [status] socket of the configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || *dur < 10*time.Second || *dur > 24*time.Hour {
		fmt.Fprintln(os.Stderr, "usage: sitegm commission [-c FILE] [--duration 10m (10s..24h)] [--out PREFIX]")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm commission: %v\n", err)
		return 2
	}
	if *sock == "" {
		*sock = cfg.Status.Socket
	}
	host, _ := os.Hostname()
	start := time.Now()
	if *out == "" {
		*out = fmt.Sprintf("sitegm-commission-%s-%s", host, start.UTC().Format("20060102T150405Z"))
	}
	col := commission.NewCollector(&cfg, host, version.BuildDate, *path, start, *dur)
	if b, err := config.ReadLimited(*path, 1<<20); err == nil {
		sum := sha256.Sum256(b)
		col.ConfigDigest(hex.EncodeToString(sum[:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()

	table, notes := leap.Load(func(p string) ([]byte, error) { return config.ReadLimited(p, 1<<20) }, cfg.GNSS.Leapfile, leap.DefaultTZif)
	col.Leap(commission.LeapObs{Source: table.Source, Expires: table.Expires, Notes: notes})
	ifaces := servedInterfaces(&cfg)
	recordInterfaces(col, ifaces)

	_, daemonErr := daemonStatus(*sock)
	running := daemonErr == nil
	var wg sync.WaitGroup
	spawn := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	phcDev := ""
	if cfg.Clock.Discipline == config.DisciplinePHC {
		if phcDev, err = nic.PHCDevice(cfg.Clock.PHC); err != nil {
			col.Problem(fmt.Sprintf("clock.phc %s: %v", cfg.Clock.PHC, err))
		}
	}
	if running {
		spawn(func() { pollDaemon(ctx, *sock, col) })
	} else {
		fmt.Fprintf(os.Stderr, "sitegm is not running (%v): reading the receiver and the pulse directly\n", daemonErr)
		spawn(func() { readReceiver(ctx, &cfg, col) })
		spawn(func() { readPulse(ctx, &cfg, phcDev, col) })
		spawn(func() { pollMonitors(ctx, &cfg, col) })
	}
	if phcDev != "" {
		spawn(func() { comparePHC(ctx, phcDev, table, col) })
	}
	progress(ctx, start, *dur, col)
	wg.Wait()
	recordInterfaces(col, ifaces)

	rep := commission.Analyze(&cfg, col.Finish(time.Since(start)))
	code := 0
	if rep.Verdict == commission.Fail {
		code = 1
	}
	page, err := rep.HTML()
	if err == nil {
		err = os.WriteFile(*out+".html", page, 0o644)
	}
	if doc, jerr := rep.JSON(); err == nil && jerr == nil {
		err = os.WriteFile(*out+".json", append(doc, '\n'), 0o644)
	} else if err == nil {
		err = jerr
	}
	printChecks(rep)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm commission: writing the report: %v\n", err)
		return 1
	}
	fmt.Printf("\n%s: %s.html and %s.json\n", rep.Verdict, *out, *out)
	return code
}

func printChecks(r *commission.Report) {
	for _, c := range r.Checks {
		fmt.Printf("%-4s  %s: %s\n", c.Verdict, c.Title, c.Figure)
		if c.Verdict != commission.Pass {
			fmt.Printf("      %s", c.Reason)
			if c.Action != "" {
				fmt.Printf("; %s", c.Action)
			}
			fmt.Println()
		}
	}
}

// daemonStatus asks the running daemon once.
func daemonStatus(sock string) (*status.Status, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var s status.Status
	if err := json.NewDecoder(io.LimitReader(c, 16<<20)).Decode(&s); err != nil {
		return nil, err
	}
	if s.Summary == "starting" {
		return &s, errors.New("starting")
	}
	return &s, nil
}

// pollDaemon takes the daemon's status every second: its document keeps
// the last 8 pulses, so none is missed.
func pollDaemon(ctx context.Context, sock string, col *commission.Collector) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if s, err := daemonStatus(sock); err == nil {
			col.DaemonStatus(s, time.Now())
		} else {
			col.Problem("the daemon's status socket stopped answering: " + err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// servedInterfaces are the interfaces the configuration serves, with
// what each serves.
func servedInterfaces(cfg *config.Config) []commission.InterfaceObs {
	var out []commission.InterfaceObs
	add := func(name, role string) {
		for i := range out {
			if out[i].Name == name {
				if !slices.Contains(out[i].Roles, role) {
					out[i].Roles = append(out[i].Roles, role)
				}
				return
			}
		}
		out = append(out, commission.InterfaceObs{Name: name, Roles: []string{role}})
	}
	for _, p := range cfg.PTP {
		add(p.Interface, "ptp")
	}
	for _, n := range cfg.NTP {
		add(n.Interface, "ntp")
	}
	return out
}

// recordInterfaces reads each interface's link and timestamping.
func recordInterfaces(col *commission.Collector, ifaces []commission.InterfaceObs) {
	for _, ifc := range ifaces {
		l, err := nic.LinkOf(ifc.Name)
		if err != nil {
			col.Problem(fmt.Sprintf("interface %s: %v", ifc.Name, err))
		}
		ifc.Exists, ifc.OperState, ifc.Carrier, ifc.SpeedMbps, ifc.Duplex = l.Exists, l.OperState, l.Carrier, l.SpeedMbps, l.Duplex
		ifc.VLAN, ifc.Parent, ifc.Addresses = l.VLAN, l.Parent, l.Addresses
		if l.Exists {
			if ti, err := nic.GetTSInfo(ifc.Name); err == nil {
				ifc.HWCapable, ifc.PHC = ti.Hardware(), ti.PHCPath()
				ifc.SWCapable = ti.SOTimestamping&unix.SOF_TIMESTAMPING_RX_SOFTWARE != 0
			}
			if a, err := nic.Applied(ifc.Name); err == nil {
				ifc.Applied = a
			} else {
				ifc.Applied, ifc.AppliedErr = "unknown", err.Error()
			}
		}
		col.Interface(ifc, l.CarrierChanges)
	}
}

// readReceiver reads the receiver directly (standalone), as the daemon
// would: its identity, fix, health and TIM-TP.
func readReceiver(ctx context.Context, cfg *config.Config, col *commission.Collector) {
	g := cfg.GNSS
	if g.Device == "" {
		return
	}
	if !strings.Contains(g.Device, "://") {
		abs, _ := filepath.Abs(g.Device)
		c, err := claim.Take("gnss" + abs)
		if err != nil {
			col.Problem(fmt.Sprintf("receiver %s: %v (is another sitegm reading it?)", g.Device, err))
			return
		}
		defer c.Release()
	}
	floor, _ := g.DateFloorTime(version.DateFloor())
	dec := gnss.NewDecoder(gnss.Options{DateFloor: floor})
	mon := gnss.NewMonitor(g.Device, time.Now())
	mon.SetHealth(gnss.HealthConfig{JammingThreshold: g.JammingThreshold})
	chunks, links := make(chan serial.Chunk, 64), make(chan serial.Link, 4)
	// Asked what it is at the open, and every 5 s until it answers.
	r := &serial.Reader{Device: g.Device, Baud: g.Baud, Greeting: ubx.Append(nil, ubx.ClassMON, ubx.MonVER, nil),
		Greeted: mon.IdentifiedSince, PollEvery: 5 * time.Second}
	go r.Run(ctx, chunks, links)
	take := func(evs []gnss.Event, at time.Time) {
		for _, ev := range evs {
			switch e := ev.(type) {
			case gnss.Report:
				mon.Report(e, at)
			case gnss.Health:
				mon.Health(e, at)
			case gnss.Version:
				mon.Version(e, at)
			case gnss.Text:
				mon.Text(e, at)
			case gnss.TimePulse:
				if !e.QErrInvalid {
					col.QErr(e.QErr)
				}
			}
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-chunks:
			take(dec.Feed(c.Data, c.At), c.At)
		case l := <-links:
			mon.Link(l, time.Now())
			if l.Err != nil {
				col.Problem(fmt.Sprintf("receiver %s: %v", g.Device, l.Err))
			}
		case now := <-t.C:
			take(dec.Tick(now), now)
			fs := dec.FramerStats()
			mon.Tick(now, fs.Skipped)
			mon.Events() // the daemon logs these; the report judges the state
			col.ReceiverSecond(mon.Snapshot(), now)
			col.ChecksumErrors(fs.Rejects[gnss.RejectNMEAChecksum] + fs.Rejects[gnss.RejectUBXChecksum])
		}
	}
}

// readPulse reads the pulse directly (standalone): each edge's phase on
// the clock it is stamped on, and the source's counters once a second.
func readPulse(ctx context.Context, cfg *config.Config, phcDev string, col *commission.Collector) {
	src, err := pps.Open(cfg.GNSS.PPSSource(), phcDev)
	if err != nil {
		col.Problem("gnss.pps: " + err.Error())
		return
	}
	if src == nil {
		return
	}
	edges := make(chan pps.Edge, 16)
	go pps.Keep(ctx, src, edges, func(err error) { col.Problem(fmt.Sprintf("PPS source %s: %v", src.Name(), err)) })
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-edges:
			name := e.Clock
			if name == pps.Realtime {
				name = "the system clock (CLOCK_REALTIME)"
			}
			col.RawEdge(e.Time, name)
		case now := <-t.C:
			st := src.Stats()
			col.SourceCounts(now, st.Edges.Load(), st.Dropped.Load(), st.Width.Load())
		}
	}
}

// pollMonitors asks each monitored host the time (standalone), against
// the box's system clock.
func pollMonitors(ctx context.Context, cfg *config.Config, col *commission.Collector) {
	if len(cfg.Monitor) == 0 {
		return
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var hosts []*monitor.Host
	var wg sync.WaitGroup
	for _, m := range cfg.Monitor {
		h := monitor.New(monitor.Config{Name: m.Name, Host: m.Host, Interval: m.Interval.Duration, Warn: m.Warn.Duration}, quiet)
		hosts = append(hosts, h)
		host, port, _ := config.SplitHostPort(m.Host, 123)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ntpnet.Poll(ctx, min(m.Interval.Duration, 16*time.Second), host, port, func() (time.Time, error) { return time.Now(), nil },
				func(r ntp.PollResult) { h.Record(r, 0) })
		}()
	}
	wg.Wait()
	var st []monitor.Status
	for _, h := range hosts {
		st = append(st, h.Status(time.Now()))
	}
	col.Monitors(st)
}

// comparePHC reads the PHC against the system clock once a second.
func comparePHC(ctx context.Context, dev string, table *leap.Table, col *commission.Collector) {
	p, err := clock.OpenPHC(dev)
	if err != nil {
		col.Problem(fmt.Sprintf("PHC %s: %v", dev, err))
		return
	}
	defer p.Close()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		so, err := p.SysOffset()
		if err != nil {
			col.PHCFailed(dev, p.Method)
		} else {
			// sitegm keeps a PHC on TAI, the system clock on UTC.
			col.PHC(dev, p.Method, so, time.Duration(table.Offset(so.System))*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// progress shows the run's progress until ctx ends: a bar redrawn each
// second on a terminal, a line a minute otherwise (a log, a pipe).
func progress(ctx context.Context, start time.Time, dur time.Duration, col *commission.Collector) {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	tty := err == nil
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(os.Stderr)
			}
			return
		case now := <-t.C:
			el := now.Sub(start)
			p := col.Progress()
			frac := min(1, float64(el)/float64(dur))
			const width = 30
			n := int(frac * width)
			line := fmt.Sprintf("[%s%s] %3.0f%%  %s left  %d pulses  receiver %s", strings.Repeat("#", n), strings.Repeat("-", width-n),
				100*frac, (dur - el).Round(time.Second), p.Pulses, orUnknown(p.Fix))
			if p.Clock != "" {
				line += "  clock " + p.Clock
			}
			if p.Problems > 0 {
				line += fmt.Sprintf("  %d problem(s)", p.Problems)
			}
			switch {
			case tty:
				fmt.Fprintf(os.Stderr, "\r%s\033[K", line)
			case now.Sub(last) >= time.Minute:
				fmt.Fprintln(os.Stderr, line)
				last = now
			}
		}
	}
}
