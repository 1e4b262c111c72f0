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
	"syscall"
	"time"

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
	d.NarrowCapabilities()
	if err := d.Run(ctx); err != nil {
		log.Error("stopped on error", "error", err)
		return 1
	}
	return 0
}
