package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sitegm/hw/claim"
	"sitegm/hw/gnss/ubxcfg"
	"sitegm/hw/serial"
	"sitegm/internal/config"
)

// cmdGNSSConfigure sets a u-blox receiver up for timing over its serial
// port (see docs/hardware.md): it asks the receiver what it is
// (UBX-MON-VER), plans the frames for its generation (hw/gnss
// PlanConfig), sends them one at a time and waits for each one's ACK-ACK
// or ACK-NAK (on generation 9+ it also reads each setting back), and
// reports every setting the receiver refused or does not hold.
func cmdGNSSConfigure(args []string) int {
	fs := flag.NewFlagSet("gnss configure", flag.ContinueOnError)
	path := fs.String("c", defaultConfig, "configuration `FILE` (gnss.device and gnss.baud are the defaults)")
	device := fs.String("device", "", "the receiver's serial `DEVICE` (default: gnss.device)")
	baud := fs.Int("baud", 0, "the port's rate now (default: gnss.baud)")
	newBaud := fs.Int("new-baud", 0, "switch the receiver's port to this rate (then set gnss.baud to it)")
	outputs := fs.String("outputs", "both", "what the receiver sends: `ubx`, nmea or both")
	pulseLen := fs.Duration("pulse-length", 100*time.Millisecond, "time pulse length")
	polarity := fs.String("pulse-polarity", "rising", "the edge on the second: `rising` or falling")
	always := fs.Bool("pulse-always", false, "pulse also without a time solution (default: only while locked)")
	timing := fs.String("timing", "survey", "time mode: `survey` (survey-in, then hold the position), fixed (--position), off (navigate), keep")
	svinMin := fs.Duration("survey-min", 5*time.Minute, "survey-in: at least this long")
	svinAcc := fs.Float64("survey-acc", 2, "survey-in: until the position is within `METRES`")
	position := fs.String("position", "", "fixed: the antenna's `LAT,LON,HEIGHT` (degrees, degrees, metres above the WGS84 ellipsoid)")
	posAcc := fs.Float64("position-acc", 0.1, "fixed: how good --position is, in `METRES`")
	cable := fs.Duration("cable-delay", 0, "have the receiver compensate this antenna cable `DELAY` itself (gnss.cable_delay must then be 0); 0: the receiver compensates none, sitegm's gnss.cable_delay does")
	save := fs.Bool("save", true, "save to the receiver's battery-backed RAM and flash")
	dry := fs.Bool("dry-run", false, "print the frames and what they mean; send nothing but the MON-VER poll")
	gen := fs.Int("generation", 0, "with --dry-run: plan for this u-blox generation (6-10) without asking the receiver")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: sitegm gnss configure [options] (see --help)")
		return 2
	}
	cfg, cfgErr := config.Load(*path)
	if *device == "" || *baud == 0 {
		if cfgErr != nil {
			fmt.Fprintf(os.Stderr, "sitegm: %v (or give --device and --baud)\n", cfgErr)
			return 2
		}
		if *device == "" {
			*device = cfg.GNSS.Device
		}
		if *baud == 0 {
			*baud = cfg.GNSS.Baud
		}
	}
	// Never both: a cable the receiver compensates and the file
	// compensates again puts the clock early by the cable's delay.
	switch {
	case *cable != 0 && cfgErr == nil && cfg.GNSS.CableDelay.Duration != 0:
		fmt.Fprintf(os.Stderr, "sitegm: %s says gnss.cable_delay = %q: the receiver and sitegm would both compensate the cable; "+
			"set it to \"0ns\" there, or configure without --cable-delay (sitegm's compensation then stands alone)\n",
			*path, cfg.GNSS.CableDelay.String())
		return 2
	case *cable != 0 && cfgErr != nil:
		fmt.Printf("note: %s could not be read (%v): make sure gnss.cable_delay is 0 where sitegm runs\n", *path, cfgErr)
	}
	if *device == "" {
		fmt.Fprintln(os.Stderr, "sitegm: the configuration has no receiver (NTP only): give --device")
		return 2
	}
	if strings.Contains(*device, "://") {
		fmt.Fprintf(os.Stderr, "sitegm: %s is not a serial port: configure the receiver where it is attached\n", *device)
		return 2
	}
	o := ubxcfg.ConfigOptions{Outputs: *outputs, CurrentBaud: *baud, Baud: *newBaud, PulseLength: *pulseLen,
		FallingEdge: *polarity == "falling", OnlyLocked: !*always, SurveyMin: *svinMin, SurveyAcc: *svinAcc,
		FixedAcc: *posAcc, Save: *save, CableDelay: *cable}
	if *polarity != "rising" && *polarity != "falling" {
		fmt.Fprintf(os.Stderr, "sitegm: --pulse-polarity %q: rising or falling\n", *polarity)
		return 2
	}
	switch *timing {
	case "survey":
		o.Timing = ubxcfg.TimingSurveyIn
	case "fixed":
		o.Timing = ubxcfg.TimingFixed
		f := strings.Split(*position, ",")
		var err error
		var v [3]float64
		for i := 0; i < 3 && len(f) == 3 && err == nil; i++ {
			v[i], err = strconv.ParseFloat(strings.TrimSpace(f[i]), 64)
		}
		if len(f) != 3 || err != nil {
			fmt.Fprintf(os.Stderr, "sitegm: --timing fixed needs --position LAT,LON,HEIGHT\n")
			return 2
		}
		o.Lat, o.Lon, o.Height = v[0], v[1], v[2]
	case "off":
		o.Timing = ubxcfg.TimingOff
	case "keep":
		o.Timing = ubxcfg.TimingKeep
	default:
		fmt.Fprintf(os.Stderr, "sitegm: --timing %q: survey, fixed, off or keep\n", *timing)
		return 2
	}
	if _, ok := serial.Rates[*baud]; !ok {
		fmt.Fprintf(os.Stderr, "sitegm: --baud %d is not a standard rate\n", *baud)
		return 2
	}
	if _, ok := serial.Rates[*newBaud]; *newBaud != 0 && !ok {
		fmt.Fprintf(os.Stderr, "sitegm: --new-baud %d is not a standard rate\n", *newBaud)
		return 2
	}

	if *dry && *gen != 0 {
		return printPlan(ubxcfg.ReceiverVersion{Gen: *gen, HW: "(--generation)"}, o)
	}
	// The daemon reads this port: two programs on one receiver would each
	// eat the other's answers. The claim is the daemon's own (hw/claim).
	abs, err := filepath.Abs(*device)
	if err != nil {
		abs = *device
	}
	c, err := claim.Take("gnss" + abs)
	var held *claim.Held
	if errors.As(err, &held) {
		fmt.Fprintf(os.Stderr, "sitegm: %s is in use: %v; stop the daemon first (systemctl stop sitegm)\n", *device, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm: %v\n", err)
		return 1
	}
	defer c.Release()

	s, err := openUBXPort(*device, *baud)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm: %v\n", err)
		return 1
	}
	defer func() { s.f.Close() }()
	v, err := s.version(!*dry)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm: %s at %d baud: %v\n", *device, *baud, err)
		return 1
	}
	fmt.Printf("receiver: %s\n", describe(v))
	if *dry {
		return printPlan(v, o)
	}
	steps, err := ubxcfg.PlanConfig(v, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm: %v\n", err)
		return 1
	}
	failed := 0
	for _, st := range steps {
		res, held := s.send(st)
		fmt.Printf("%-11s %-8s %s\n", st.Setting, res, st.Meaning)
		for _, d := range differences(st.Keys, held) {
			fmt.Printf("%-11s %-8s %s\n", "", "", d)
		}
		if res == "REFUSED" && st.Optional {
			fmt.Printf("%-11s %-8s (optional: this receiver lacks %s; sitegm does without it)\n", "", "", messageOf(st))
		}
		if (res == "REFUSED" && !st.Optional) || res == "NO ANSWER" || res == "NOT SET" || res == "UNCONFIRMED" {
			failed++
		}
		if st.NewBaud != 0 {
			if err := s.reopen(st.NewBaud); err != nil {
				fmt.Fprintf(os.Stderr, "sitegm: reopening at %d baud: %v\n", st.NewBaud, err)
				return 1
			}
			if !st.NoAck {
				if _, err := s.version(false); err != nil {
					fmt.Printf("%-11s %-8s the receiver does not answer at %d baud\n", "baud", "FAILED", st.NewBaud)
					failed++
				} else {
					fmt.Printf("%-11s %-8s the receiver answers at %d baud: set gnss.baud = %d\n", "baud", "ok", st.NewBaud, st.NewBaud)
				}
			}
		}
	}
	if failed > 0 {
		fmt.Printf("%d setting(s) refused or unanswered: the receiver is only partly configured\n", failed)
		return 1
	}
	fmt.Println("configured")
	return 0
}

func describe(v ubxcfg.ReceiverVersion) string {
	mod := v.Module
	if mod == "" {
		mod = "u-blox receiver"
	}
	s := fmt.Sprintf("%s, generation %d (hardware %s, software %s", mod, v.Gen, v.HW, v.SW)
	if v.ProtVer != "" {
		s += ", protocol " + v.ProtVer
	}
	return s + ")"
}

func messageOf(st ubxcfg.ConfigStep) string {
	if f := strings.Fields(st.Meaning); len(f) > 0 {
		return f[0]
	}
	return st.Setting
}

func printPlan(v ubxcfg.ReceiverVersion, o ubxcfg.ConfigOptions) int {
	steps, err := ubxcfg.PlanConfig(v, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm: %v\n", err)
		return 1
	}
	fmt.Printf("dry run for generation %d: %d frames, none sent\n", v.Gen, len(steps))
	for _, st := range steps {
		note := ""
		switch {
		case st.NoAck:
			note = " (no answer possible: UBX output is off after it)"
		case st.Optional:
			note = " (optional)"
		}
		fmt.Printf("%s: %s%s\n  %s % X\n", st.Setting, st.Meaning, note, ubxcfg.UBXName(st.Class, st.ID), st.Frame)
	}
	return 0
}
