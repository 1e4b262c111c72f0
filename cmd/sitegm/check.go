package main

import (
	"flag"
	"fmt"
	"os"

	"sitegm/internal/config"
	"sitegm/internal/version"
)

func versionString() string {
	d := version.BuildDate
	if d == "" {
		d = "unreleased"
	}
	return "sitegm (built " + d + ")"
}

func cmdCheckConfig(args []string) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("c", defaultConfig, "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*path)
	if !ok {
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	fmt.Print(config.Format(cfg))
	return 0
}
