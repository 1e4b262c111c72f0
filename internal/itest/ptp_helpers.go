package itest

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
)

// SitegmConfig writes a sitegm configuration for a lab host: gnss-sim's
// pty and SOCK in dir, a virtual clock, extra TOML appended.
func SitegmConfig(t testing.TB, dir, extra string) string {
	return WriteFile(t, dir, "sitegm.toml", SitegmBase(dir)+fmt.Sprintf(`[log]
target = "stderr"
status_interval = "1s"
[status]
socket = "%[1]s/status.sock"
%[2]s
`, dir, extra))
}

// LogStatus is the [log], [status] and [http] tables of a lab's sitegm:
// logfmt on stderr with a status line every 5 s, the status socket in
// dir, no HTTP endpoint. Tables of the lab's own ([[ptp]] ...) follow it.
func LogStatus(dir string) string {
	return fmt.Sprintf(`[log]
target = "stderr"
status_interval = "5s"
[status]
socket = "%s/status.sock"
[http]
listen = ""
`, dir)
}

// SitegmBase is the [gnss] and [clock] part of SitegmConfig, for tests
// that write their own [log] and [status].
func SitegmBase(dir string) string {
	return fmt.Sprintf(`
[gnss]
device = "%[1]s/gnss"
baud = 115200
pps = "sock:%[1]s/pps.sock"
[clock]
discipline = "virtual"
drift_file = "%[1]s/drift"
`, dir)
}

// LoopbackNTP is an [[ntp]] table on lo at a free port: something to serve
// for tests about the clock alone (a configuration that serves nothing is
// refused).
func LoopbackNTP(t testing.TB) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	return fmt.Sprintf("[[ntp]]\ninterface = \"lo\"\nport = %d\n", port)
}

// StartGNSSSim runs gnss-sim for a sitegm configured by SitegmConfig.
func StartGNSSSim(t testing.TB, dir string, args ...string) *Proc {
	a := append([]string{"--pty-link", filepath.Join(dir, "gnss"), "--baud", "115200",
		"--pps-sock", filepath.Join(dir, "pps.sock"), "--truth", filepath.Join(dir, "truth.json"), "--ubx"}, args...)
	return Start(t, Bin(t, "gnss-sim"), a...)
}

// Ptp4lConfig writes a linuxptp configuration.
func Ptp4lConfig(t testing.TB, dir, name, body string) string {
	return WriteFile(t, dir, name, "[global]\n"+body)
}

// Ptp4lSlaveConf is a ptp4l that measures and never steers: slave only,
// free running, software timestamps, UDP/IPv4, end to end. A free-running
// ptp4l reports an offset once per frequency estimation interval and prints
// a summary per summary interval: both at one Sync (2^-3 s) make it print
// "master offset" for every Sync.
const Ptp4lSlaveConf = `slaveOnly 1
free_running 1
time_stamping software
network_transport UDPv4
delay_mechanism E2E
logging_level 6
tx_timestamp_timeout 50
freq_est_interval 0
summary_interval -3
`
