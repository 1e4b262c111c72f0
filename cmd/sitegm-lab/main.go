// Command sitegm-lab runs the kernel lab (package lab): a Debian kernel
// under QEMU with a test PHC and PPS module, and sitegm's hardware paths
// against it. It prints one line per scenario, then "lab: P/N scenarios
// pass", and writes bin/lab/results.json. Without root or the packages it
// needs it says what is missing and exits 0 (make test runs it that way).
//
//	sitegm-lab [--freq-error -40ppm] [--pulse-width 100ms] [--jitter 20ns] [--qerr 0ns] [--cable-delay 150ns] [--only extts,faults]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sitegm/lab"
)

func main() { os.Exit(run(os.Args[1:])) }

// ppm parses "-40ppm", "250ppb" or a number of ppb.
func ppb(s string) (int64, error) {
	mul := 1.0
	switch {
	case strings.HasSuffix(s, "ppm"):
		s, mul = strings.TrimSuffix(s, "ppm"), 1000
	case strings.HasSuffix(s, "ppb"):
		s = strings.TrimSuffix(s, "ppb")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("want a frequency error such as -40ppm or 250ppb, got %q", s)
	}
	return int64(v * mul), nil
}

func run(args []string) int {
	fs := flag.NewFlagSet("sitegm-lab", flag.ContinueOnError)
	freq := fs.String("freq-error", "25ppm", "the PHC's natural frequency error (ppm or ppb; ±200 ppm at most)")
	freq2 := fs.String("freq-error2", "-15ppm", "the second PHC's natural frequency error (second-phc; ±200 ppm at most)")
	width := fs.Duration("pulse-width", 100*time.Millisecond, "width of the simulated 1PPS (1ms..900ms)")
	jitter := fs.Duration("jitter", 20*time.Nanosecond, "standard deviation of the pulse's edge noise (0..10us)")
	qerr := fs.Duration("qerr", 0, "amplitude of the receiver's sawtooth (0..100ns)")
	cable := fs.Duration("cable-delay", 150*time.Nanosecond, "how late the pulse reaches the pin in the delays scenario, as down an antenna cable (10ns..10us)")
	only := fs.String("only", "", "run these scenarios only (comma separated: "+strings.Join(lab.Scenarios, ",")+")")
	work := fs.String("work", "bin/lab", "work directory (kernel, image, console log, results.json)")
	guests := fs.Int("guests", 2, "QEMU guests that share the scenarios, side by side (one CPU each)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := ppb(*freq)
	f2, err2 := ppb(*freq2)
	switch {
	case err != nil || err2 != nil:
		fmt.Fprintln(os.Stderr, "sitegm-lab:", errors.Join(err, err2))
		return 2
	case f < -200000 || f > 200000 || f2 < -200000 || f2 > 200000:
		fmt.Fprintln(os.Stderr, "sitegm-lab: --freq-error or --freq-error2 beyond ±200 ppm")
		return 2
	case *width < time.Millisecond || *width > 900*time.Millisecond || (*width-500*time.Millisecond).Abs() <= 5*time.Millisecond:
		fmt.Fprintln(os.Stderr, "sitegm-lab: --pulse-width must be 1ms..900ms, not 495ms..505ms (a pulse half a second wide has edges nothing tells apart: gnss.pps_width)")
		return 2
	case *jitter < 0 || *jitter > 10*time.Microsecond:
		fmt.Fprintln(os.Stderr, "sitegm-lab: --jitter must be 0..10us")
		return 2
	case *qerr < 0 || *qerr > 100*time.Nanosecond:
		fmt.Fprintln(os.Stderr, "sitegm-lab: --qerr must be 0..100ns")
		return 2
	case *guests < 1 || *guests > 8:
		fmt.Fprintln(os.Stderr, "sitegm-lab: --guests must be 1..8")
		return 2
	case *cable < 10*time.Nanosecond || *cable > 10*time.Microsecond:
		fmt.Fprintln(os.Stderr, "sitegm-lab: --cable-delay must be 10ns..10us")
		return 2
	}
	if why := lab.Missing(); why != "" {
		fmt.Printf("lab: skipped (%s): run as root after make test-deps\n", why)
		return 0
	}
	root, _ := os.Getwd()
	o := lab.Options{FreqErrorPPB: f, FreqError2PPB: f2, PulseWidth: *width, Jitter: *jitter, QErr: *qerr, CableDelay: *cable, Root: root,
		Work: *work, Log: os.Stdout, Timeout: 25 * time.Minute, Guests: *guests}
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := lab.Run(ctx, o)
	pass := 0
	for _, r := range res {
		if r.Pass {
			pass++
		}
	}
	want := len(lab.Scenarios)
	if len(o.Only) > 0 {
		want = len(o.Only)
	}
	if b, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
		os.WriteFile(filepath.Join(*work, "results.json"), append(b, '\n'), 0o644)
	}
	if err != nil {
		fmt.Println("lab:", err)
	}
	fmt.Printf("lab: %d/%d scenarios pass (%v)\n", pass, want, time.Since(start).Round(time.Second))
	if err != nil || pass != want {
		return 1
	}
	return 0
}
