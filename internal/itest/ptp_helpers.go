package itest

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sitegm/internal/peers"
	"strings"
	"sync"
	"testing"
	"time"
)

// SitegmConfig writes a sitegm configuration for a lab host: gnss-sim's
// pty and SOCK in dir, a virtual clock, extra TOML appended. The HTTP
// endpoint is off unless extra has an [http] table: its default address
// (127.0.0.1:8123) would be one for every test on the host's loopback.
func SitegmConfig(t testing.TB, dir, extra string) string {
	http := "[http]\nlisten = \"\"\n"
	if strings.Contains(extra, "[http]") {
		http = ""
	}
	return WriteFile(t, dir, "sitegm.toml", SitegmBase(dir)+fmt.Sprintf(`[log]
target = "stderr"
status_interval = "1s"
[status]
socket = "%[1]s/status.sock"
%[3]s%[2]s
`, dir, extra, http))
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
	return fmt.Sprintf("[[ntp]]\ninterface = \"lo\"\nport = %d\n", FreePort(t, "udp"))
}

var (
	portMu sync.Mutex
	ports  = map[string]bool{}
)

// FreePort is a port on 127.0.0.1 that the kernel has just handed out
// as free (network "udp" or "tcp") and that no other test of this binary
// was given: tests running in parallel share the host's loopback, and two
// that drew the same port would take each other's traffic.
func FreePort(t testing.TB, network string) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for {
		var port int
		switch network {
		case "udp":
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			c.Close()
		case "tcp":
			l, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		default:
			t.Fatalf("FreePort: network %q", network)
		}
		if key := fmt.Sprint(network, port); !ports[key] {
			ports[key] = true
			return port
		}
	}
}

// StartGNSSSim runs gnss-sim for a sitegm configured by SitegmConfig.
func StartGNSSSim(t testing.TB, dir string, args ...string) *Proc {
	a := append([]string{"--pty-link", filepath.Join(dir, "gnss"), "--baud", "115200",
		"--pps-sock", filepath.Join(dir, "pps.sock"), "--truth", filepath.Join(dir, "truth.json"), "--ubx"}, args...)
	return Start(t, Bin(t, "gnss-sim"), a...)
}

// SimControl injects faults into a running gnss-sim (--control): a test
// that must have the receiver fail after a state it waited for (locked,
// measured) starts the fault then, instead of at a time fixed in advance
// that a slow machine may reach before the state.
type SimControl struct {
	p *Proc
	w io.WriteCloser
}

// StartGNSSSimControl is StartGNSSSim with --control.
func StartGNSSSimControl(t testing.TB, dir string, args ...string) (*Proc, *SimControl) {
	t.Helper()
	a := append([]string{"--pty-link", filepath.Join(dir, "gnss"), "--baud", "115200",
		"--pps-sock", filepath.Join(dir, "pps.sock"), "--truth", filepath.Join(dir, "truth.json"), "--ubx", "--control"}, args...)
	cmd := exec.Command(Bin(t, "gnss-sim"), a...)
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := StartCmd(t, cmd)
	return p, &SimControl{p: p, w: w}
}

// Fault starts a fault (KIND+LENGTH, as --fault without @START) at the
// receiver's next edge, and returns once gnss-sim has taken it.
func (c *SimControl) Fault(t testing.TB, spec string) {
	t.Helper()
	m := c.p.Mark()
	if _, err := fmt.Fprintln(c.w, spec); err != nil {
		t.Fatalf("gnss-sim control: %v", err)
	}
	c.p.WaitText(t, m, 20*time.Second, "gnss-sim: control: fault")
}

// Ptp4lConfig writes a linuxptp configuration.
func Ptp4lConfig(t testing.TB, dir, name, body string) string {
	return WriteFile(t, dir, name, "[global]\n"+body)
}

// Ptp4lSlaveConf is a ptp4l that measures and never steers
// (peers.Ptp4lSlave), without its [global] line: Ptp4lConfig adds it.
var Ptp4lSlaveConf = strings.TrimPrefix(peers.Ptp4lSlave, "[global]\n")

// CaptureKinds captures PTPv2 messages on h's eth0 with one tshark per
// message type, each to its own count (want: message type -> count):
// kinds come at their own rates (Delay_Resps only as fast as the slaves
// ask, Announces every 2 s), and a fixed window or one count of all
// kinds can close before a slow kind arrived. filter is the BPF filter of
// the messages; typeByte the BPF byte whose low nibble is the message
// type (IEEE 1588-2019 13.3.1: "udp[8]" over UDP, "ether[14]" over
// Ethernet). The returned wait waits for every capture (guard timeout)
// and returns the files.
func CaptureKinds(t *testing.T, h *Host, dir, name, filter, typeByte string, want map[int]int) (wait func(timeout time.Duration) []string) {
	t.Helper()
	var files []string
	var procs []*Proc
	for kind, n := range want {
		f := filepath.Join(dir, fmt.Sprintf("%s-%x.pcap", name, kind))
		files = append(files, f)
		procs = append(procs, h.Start(t, "tshark", "-i", "eth0", "-w", f, "-c", fmt.Sprint(n),
			"-f", fmt.Sprintf("(%s) and %s & 0x0f = %d", filter, typeByte, kind)))
	}
	return func(timeout time.Duration) []string {
		t.Helper()
		end := time.Now().Add(timeout)
		for i, p := range procs {
			if exited, _ := p.Wait(time.Until(end)); !exited {
				t.Fatalf("tshark did not capture its messages: %s", files[i])
			}
		}
		return files
	}
}

// TsharkFields reads fields of the PTP messages in files (display filter
// display).
func TsharkFields(t *testing.T, files []string, display string, fields ...string) string {
	t.Helper()
	var out []byte
	for _, f := range files {
		args := []string{"-r", f, "-Y", display, "-T", "fields"}
		for _, fl := range fields {
			args = append(args, "-e", fl)
		}
		o, err := exec.Command("tshark", args...).Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", f, err)
		}
		out = append(out, o...)
	}
	return string(out)
}
