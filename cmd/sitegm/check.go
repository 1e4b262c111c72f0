package main

import (
	"flag"
	"fmt"

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
	fmt.Print(config.Format(cfg))
	return 0
}
