package itest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The unit passes systemd-analyze verify (with the binary where the test
// built it instead of /usr/local/bin).
func TestUnitVerifies(t *testing.T) {
	Parallel(t)
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (make test installs systemd as root)")
	}
	unit, err := os.ReadFile(filepath.Join(Root(), "configs", "sitegm.service"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := WriteFile(t, dir, "sitegm.service", strings.ReplaceAll(string(unit), "/usr/local/bin/sitegm", Bin(t, "sitegm")))
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "CAP_SYS_TIME", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
		"CAP_NET_ADMIN", "ProtectSystem=strict", "StateDirectory=sitegm", "RuntimeDirectory=sitegm", "DeviceAllow=char-pps",
		"DeviceAllow=char-ptp", "ExecReload=", "UMask=0027", "ProtectProc=invisible", "IPAddressDeny=any", "IPAddressAllow="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

// loSitegm is a sitegm on loopback with unprivileged ports, gnss-sim and a
// virtual clock: no root needed. The ports are free ones, apart from
// every other test's; it returns the configuration and the NTP port.
func loSitegm(t *testing.T, dir, extra string) (cfg string, ntpPort int) {
	ntpPort = FreePort(t, "udp")
	return SitegmConfig(t, dir, fmt.Sprintf(`[[ptp]]
interface = "lo"
timestamping = "software"
event_port = %d
general_port = %d
[[ntp]]
interface = "lo"
port = %d
`, FreePort(t, "udp"), FreePort(t, "udp"), ntpPort)+extra), ntpPort
}

// The service manager's side of Type=notify: READY=1 once serving,
// STATUS= lines, WATCHDOG=1 from the main loop, STOPPING=1 at the end;
// and `sitegm status` answers over the socket, in both forms.
func TestNotifyAndStatus(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	cfg, _ := loSitegm(t, dir, "")
	sockPath := filepath.Join(dir, "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := l.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd := exec.Command(Bin(t, "sitegm"), "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=2000000")
	sg := StartCmd(t, cmd)
	StartGNSSSim(t, dir)
	seen := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for !(seen["READY=1"] && seen["WATCHDOG=1"] && seen["STATUS=LOCKED"]) {
		select {
		case m := <-msgs:
			for _, l := range strings.Split(m, "\n") {
				k := l
				if strings.HasPrefix(l, "STATUS=") {
					k = "STATUS=" + strings.Fields(strings.TrimPrefix(l, "STATUS="))[0]
				}
				seen[k] = true
			}
		case <-deadline:
			t.Fatalf("notifications seen: %v\n%s", seen, tail(sg.Output(), 10))
		}
	}
	out, err := exec.Command(Bin(t, "sitegm"), "status", "-c", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "LOCKED") || !strings.Contains(string(out), "PTP lo") || !strings.Contains(string(out), "NTP lo") {
		t.Errorf("sitegm status: %v\n%s", err, out)
	}
	t.Logf("sitegm status:\n%s", out)
	out, err = exec.Command(Bin(t, "sitegm"), "status", "-c", cfg, "--json").Output()
	var st statusDoc
	if err != nil || json.Unmarshal(out, &st) != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if !st.Ready || st.Clock.State != "LOCKED" || st.Clock.ClockClass != 6 || len(st.PTP) != 1 || st.PTP[0].V1 == nil || len(st.NTP) != 1 {
		t.Errorf("status --json: %+v", st)
	}
	sg.Signal(syscall.SIGTERM)
	sg.Wait(10 * time.Second)
	// sitegm has exited: whatever it sent is in the socket's queue, but
	// the reader may not have handed it on yet (it did not, once, in a
	// CI run): read on until STOPPING=1 or the reader has nothing more.
	gotStop := false
	for quiet := time.After(10 * time.Second); !gotStop; {
		select {
		case m := <-msgs:
			gotStop = strings.Contains(m, "STOPPING=1")
		case <-quiet:
			t.Fatal("no STOPPING=1")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "drift")); err != nil {
		t.Errorf("no drift file after SIGTERM: %v", err)
	}
}

// SIGHUP: a changed [[ntp]] table is served at once and the untouched PTP
// port keeps running; a [clock] change is logged as needing a restart; a
// broken file is refused and the running configuration keeps serving.
func TestReload(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	cfg, port := loSitegm(t, dir, "")
	newPort := FreePort(t, "udp")
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	StartGNSSSim(t, dir)
	sg.WaitEvent(t, 0, 30*time.Second, "ntp_up")
	sg.WaitEvent(t, 0, 30*time.Second, "ptp_port_up")
	orig, _ := os.ReadFile(cfg)
	changed := strings.Replace(string(orig), fmt.Sprintf("port = %d\n", port), fmt.Sprintf("port = %d\n", newPort), 1)
	changed = strings.Replace(changed, "[clock]\n", "[clock]\nholdover = \"2h\"\n", 1)
	os.WriteFile(cfg, []byte(changed), 0o644)
	m := sg.Mark()
	sg.Signal(syscall.SIGHUP)
	rl, _ := sg.WaitEvent(t, m, 20*time.Second, "reloaded")
	if !rl.Has("needs_restart", "[clock]") || !strings.Contains(rl["msg"], "take effect at the next restart") {
		t.Errorf("the [clock] change is not named: %v", rl)
	}
	WaitFor(t, 20*time.Second, "NTP on the new port", func() bool {
		return exec.Command(Bin(t, "sitegm"), "ntp-query", fmt.Sprintf("127.0.0.1:%d", newPort)).Run() == nil
	})
	if n := len(sg.Lines(0, "event", "ptp_port_up")); n != 1 {
		t.Errorf("the unchanged PTP port was opened %d times", n)
	}
	os.WriteFile(cfg, []byte(changed+"\n[bogus]\nx = 1\n"), 0o644)
	m = sg.Mark()
	sg.Signal(syscall.SIGHUP)
	sg.WaitEvent(t, m, 20*time.Second, "reload_refused")
	if err := exec.Command(Bin(t, "sitegm"), "ntp-query", fmt.Sprintf("127.0.0.1:%d", newPort)).Run(); err != nil {
		t.Errorf("NTP stopped after a refused reload: %v", err)
	}
}
