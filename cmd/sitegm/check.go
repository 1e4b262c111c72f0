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
	cfg, err := config.Load(*path)
	if err != nil {
		if es, ok := err.(config.Errors); ok {
			for _, e := range es {
				fmt.Fprintln(os.Stderr, e)
			}
			fmt.Fprintf(os.Stderr, "%s: %d error(s)\n", *path, len(es))
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	fmt.Print(config.Format(cfg))
	return 0
}
