package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"sitegm/configs"
	"sitegm/internal/config"
)

// cmdDemo is `make run`: the embedded demo configuration with gnss-sim as
// the receiver, a virtual clock, loopback and unprivileged ports. No
// hardware, no root, and the host clock is never touched.
func cmdDemo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "/tmp/sitegm-demo", "directory for the pty link, sockets and drift file")
	bin := fs.String("bin", "", "directory holding gnss-sim (default: next to this sitegm)")
	httpAddr := fs.String("http", "", "serve the status page and metrics on `ADDR:PORT` (default: the demo's 127.0.0.1:8123; \"\" with --http= turns it off)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Parse("configs/demo.toml (embedded)", configs.Demo)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "sitegm demo:", err)
		return 1
	}
	move := func(p string) string { return filepath.Join(*dir, filepath.Base(p)) }
	cfg.GNSS.Device = move(cfg.GNSS.Device)
	cfg.GNSS.PPS.Path = move(cfg.GNSS.PPS.Path)
	cfg.Clock.DriftFile = move(cfg.Clock.DriftFile)
	cfg.Status.Socket = move(cfg.Status.Socket)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "http" {
			cfg.HTTP.Listen = *httpAddr
		}
	})

	if *bin == "" {
		if exe, err := os.Executable(); err == nil {
			*bin = filepath.Dir(exe)
		}
	}
	// The simulated receiver runs 37 ms and 2.5 ppm away from the host
	// clock, so there is something to discipline.
	simArgs := []string{"--pty-link", cfg.GNSS.Device, "--baud", fmt.Sprint(cfg.GNSS.Baud),
		"--pps-sock", cfg.GNSS.PPS.Path, "--offset", "37ms", "--drift", "2.5", "--pps-jitter", "50ns",
		"--nmea-latency", "120ms:30ms", "--ubx"}
	sim := exec.Command(filepath.Join(*bin, "gnss-sim"), simArgs...)
	sim.Stderr = os.Stderr
	// Its own process group: Ctrl-C stops sitegm, which then stops the
	// receiver; Pdeathsig covers sitegm dying without cleaning up.
	sim.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := sim.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "sitegm demo: cannot start gnss-sim (build it with make build): %v\n", err)
		return 1
	}
	defer func() {
		sim.Process.Signal(syscall.SIGTERM)
		sim.Wait()
	}()
	ntpPort := 123
	if len(cfg.NTP) > 0 {
		ntpPort = cfg.NTP[0].Port
	}
	self, _ := os.Executable()
	fmt.Fprintf(os.Stderr, `
sitegm demo: a simulated receiver (gnss-sim: NMEA on %s, PPS on %s),
a virtual clock, PTP and NTP on loopback (unprivileged ports). Stop with Ctrl-C.
  %s
  watch the log below: state changes are NOTICE/WARNING events, the status
  line comes every %s. From another terminal:
    %s status --socket %s          (--json for scripts)
    %s ntp-query 127.0.0.1:%d
  (PTP is on lo, ports %d/%d.)
  status page: http://%s/   (metrics: /metrics, document: /status.json)

`, cfg.GNSS.Device, cfg.GNSS.PPS.Path, "sim: gnss-sim "+strings.Join(simArgs, " "), cfg.Log.StatusInterval,
		self, cfg.Status.Socket, self, ntpPort, cfg.PTP[0].EventPort, cfg.PTP[0].GeneralPort, cfg.HTTP.Listen)
	return runDaemon(cfg, nil)
}
