// Command sitegm is the site grandmaster daemon and its operator commands.
package main

import (
	"fmt"
	"os"
)

const usage = `sitegm: GNSS-disciplined PTP/NTP site grandmaster

usage:
  sitegm run [-c FILE]                 run the daemon (SIGHUP reloads FILE, SIGUSR1 accepts a GNSS jump)
  sitegm status [-c FILE] [--json]     ask the running daemon (its [status] socket)
  sitegm ntp-query [--nts] HOST[:PORT] one NTP request: stratum, leap, offset, delay (NTS: authenticated)
  sitegm check-config [-c FILE]        print the effective configuration, or every error
  sitegm commission [-c FILE] [--duration 10m] [--out PREFIX]
                                       watch the site box and write its commissioning report (HTML, JSON)
  sitegm gnss decode [--json] FILE|-   decode a receiver capture into time reports
  sitegm gnss configure [--dry-run]    set a u-blox receiver up for timing (see --help)
  sitegm sim [--scenario NAME] [--json] simulate the clock discipline against the PI baseline
  sitegm demo [--dir D] [--bin DIR]    run the embedded demo (what make run does)
  sitegm version

FILE defaults to /etc/sitegm/sitegm.toml.
`

// defaultConfig is where an installed sitegm keeps its configuration.
const defaultConfig = "/etc/sitegm/sitegm.toml"

func main() {
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	rest := args[1:]
	switch args[0] {
	case "run":
		return cmdRun(rest)
	case "status":
		return cmdStatus(rest)
	case "ntp-query":
		return cmdNTPQuery(rest)
	case "check-config":
		return cmdCheckConfig(rest)
	case "commission":
		return cmdCommission(rest)
	case "gnss":
		if len(rest) > 0 && rest[0] == "decode" {
			return cmdGNSSDecode(rest[1:])
		}
		if len(rest) > 0 && rest[0] == "configure" {
			return cmdGNSSConfigure(rest[1:])
		}
		fmt.Fprintln(os.Stderr, "usage: sitegm gnss decode [--json] FILE|-\n       sitegm gnss configure [--dry-run] [options]")
		return 2
	case "demo":
		return cmdDemo(rest)
	case "sim":
		return cmdSim(rest)
	case "version":
		fmt.Println(versionString())
		return 0
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "sitegm: unknown command %q\n\n%s", args[0], usage)
	return 2
}
