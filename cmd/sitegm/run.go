package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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
	return runDaemon(cfg)
}

func runDaemon(cfg config.Config) int {
	level, _ := logging.ParseLevel(cfg.Log.Level)
	log, _ := logging.New(logging.Options{Level: level, Target: cfg.Log.Target})
	d, err := daemon.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.Error("stopped on error", "error", err)
		return 1
	}
	return 0
}
