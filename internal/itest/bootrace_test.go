package itest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Boot races: an [[ntp]] interface that does not exist when sitegm starts
// is waited for (and said so), served as soon as it appears, and served
// again after it is deleted and re-created (a new ifindex: sockets bound
// to the old one would be deaf), and after it went down and up (logged
// both ways, not re-opened).
func TestInterfaceAppearsLater(t *testing.T) {
	needTools(t)
	lab := NewLab(t)
	gm, cam := lab.Bare("gm"), lab.Bare("cam")
	dir := t.TempDir()
	cfg := SitegmConfig(t, dir, "[[ntp]]\ninterface = \"vid0\"\n")
	sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	StartGNSSSim(t, dir)
	sg.WaitOutput(t, 10*time.Second, "event=ntp_waiting")
	query := func() bool {
		out, err := cam.Run(Bin(t, "sitegm"), "ntp-query", "--timeout", "500ms", "10.91.0.1")
		return err == nil && strings.Contains(out, "stratum")
	}
	lab.Link(gm, "vid0", "10.91.0.1/24", cam, "eth0", "10.91.0.2/24")
	WaitFor(t, 10*time.Second, "NTP on the interface that appeared", query)
	run(t, "ip", "-n", gm.NS, "link", "del", "vid0")
	sg.WaitOutput(t, 10*time.Second, "event=ntp_interface_lost")
	lab.Link(gm, "vid0", "10.91.0.1/24", cam, "eth0", "10.91.0.2/24")
	WaitFor(t, 15*time.Second, "NTP on the re-created interface", query)
	// Down and up with the same index (a cable pulled, a switch port
	// bounced): the kernel keeps the address, the sockets and their
	// bindings, so the server keeps serving without being re-opened.
	run(t, "ip", "-n", gm.NS, "link", "set", "vid0", "down")
	sg.WaitOutput(t, 10*time.Second, "event=ntp_link_down")
	if query() {
		t.Error("answered through an interface that is down")
	}
	run(t, "ip", "-n", gm.NS, "link", "set", "vid0", "up")
	WaitFor(t, 10*time.Second, "NTP after the interface came back up", query)
	sg.WaitOutput(t, 10*time.Second, "event=ntp_link_up")
	if n := strings.Count(sg.Output(), "NTP server up"); n != 2 {
		t.Errorf("NTP server started %d times, want 2 (appeared, re-created; not again for down/up)", n)
	}
}

// A PHC that is not there at start (its NIC comes up later at boot) is
// waited for, and said so, rather than a reason to exit.
func TestWaitsForThePHC(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	cfg := SitegmConfig(t, dir, "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `discipline = "virtual"`, "discipline = \"phc\"\nphc = \"nic-not-yet\"", 1)), 0o644)
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	sg.WaitOutput(t, 5*time.Second, "event=clock_waiting")
	if exited, _ := sg.Wait(3 * time.Second); exited {
		t.Fatalf("sitegm exited instead of waiting:\n%s", sg.Output())
	}
}
