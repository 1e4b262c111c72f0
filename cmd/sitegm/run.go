package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"sitegm/hw/caps"
	"sitegm/hw/nic"
	"sitegm/internal/config"
	"sitegm/internal/daemon"
	"sitegm/internal/logging"
)

func loadConfig(path string) (config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		if es, ok := err.(config.Errors); ok {
			for _, e := range es {
				fmt.Fprintln(os.Stderr, e)
			}
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		return cfg, false
	}
	return cfg, true
}

func cmdRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("c", defaultConfig, "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*path)
	if !ok {
		return 1
	}
	return runDaemon(cfg, func() (config.Config, error) { return config.Load(*path) })
}

// runDaemon runs the daemon until SIGTERM or SIGINT; reload (SIGHUP) may
// be nil.
func runDaemon(cfg config.Config, reload func() (config.Config, error)) int {
	level, _ := logging.ParseLevel(cfg.Log.Level)
	lv := new(slog.LevelVar)
	lv.Set(level)
	log, _ := logging.New(logging.Options{Level: lv, Target: cfg.Log.Target})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Boot races: the PHC (or the NIC that carries it) may appear after
	// sitegm starts. Wait for it, saying what is missing, instead of
	// exiting; anything else that stops the start is final.
	var d *daemon.Daemon
	for warned := false; ; {
		var err error
		d, err = daemon.New(cfg, log)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENODEV) && !errors.Is(err, daemon.ErrNoPHC) {
			log.Error("cannot start", "error", err)
			return 1
		}
		if !warned {
			log.Warn("waiting for the clock device", "event", "clock_waiting", "error", err.Error())
			warned = true
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(2 * time.Second):
		}
	}
	d.Level, d.Reload = lv, reload
	d.Caps, d.CapsNarrowed = narrowCapabilities(cfg, log)
	checkUnitAllow(cfg, log)
	if err := d.Run(ctx); err != nil {
		log.Error("stopped on error", "error", err)
		return 1
	}
	return 0
}

// narrowCapabilities drops every capability the configuration does not
// need, once the daemon has opened what needs them (daemon.New); it
// returns what is left, and whether anything was dropped (a reload that
// needs a dropped one waits for a restart). What is kept is logged; a
// build that cannot change capabilities (cgo) says so.
func narrowCapabilities(cfg config.Config, log *slog.Logger) (caps.Set, bool) {
	have, err := caps.Current()
	if err != nil || have == 0 {
		return have, false // nothing to drop (an unprivileged run: make run, tests)
	}
	left, err := caps.Narrow(cfg.Capabilities())
	if err != nil {
		log.Warn("capabilities not narrowed; running with all the unit grants", "event", "capabilities",
			"error", err.Error(), "capabilities", have.String())
		return have, false
	}
	log.Info("capabilities narrowed to what the configuration needs", "event", "capabilities",
		"capabilities", left.String(), "dropped", (have &^ left).String())
	return left, true
}

// checkUnitAllow warns, under systemd, about served addresses the unit's
// address filter drops.
func checkUnitAllow(cfg config.Config, log *slog.Logger) {
	if os.Getenv("INVOCATION_ID") == "" {
		return
	}
	if bad := cfg.OutsideUnitAllow(nic.IPv4Prefixes); len(bad) > 0 {
		log.Warn("served addresses outside the unit's IPAddressAllow: their clients are dropped by systemd; add them with systemctl edit sitegm",
			"event", "address_not_allowed", "addresses", strings.Join(bad, ", "))
	}
}
