package itest

import (
	"os"
	"os/exec"
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
	Parallel(t)
	needTools(t)
	lab := NewLab(t)
	gm, cam := lab.Bare("gm"), lab.Bare("cam")
	dir := t.TempDir()
	cfg := SitegmConfig(t, dir, "[[ntp]]\ninterface = \"vid0\"\n")
	sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	StartGNSSSim(t, dir)
	sg.WaitEvent(t, 0, 20*time.Second, "ntp_waiting")
	query := func() bool {
		out, err := cam.Run(Bin(t, "sitegm"), "ntp-query", "--timeout", "500ms", "10.91.0.1")
		return err == nil && strings.Contains(out, "stratum")
	}
	lab.Link(gm, "vid0", "10.91.0.1/24", cam, "eth0", "10.91.0.2/24")
	WaitFor(t, 20*time.Second, "NTP on the interface that appeared", query)
	m := sg.Mark()
	run(t, "ip", "-n", gm.NS, "link", "del", "vid0")
	sg.WaitEvent(t, m, 20*time.Second, "ntp_interface_lost")
	lab.Link(gm, "vid0", "10.91.0.1/24", cam, "eth0", "10.91.0.2/24")
	WaitFor(t, 20*time.Second, "NTP on the re-created interface", query)
	// Down and up with the same index (a cable pulled, a switch port
	// bounced): the kernel keeps the address, the sockets and their
	// bindings, so the server keeps serving without being re-opened.
	// The kernel says a carrier is up (IFF_RUNNING, operstate UP) only
	// when its link watch runs, up to a second after traffic already
	// flows: until then the link never was up as the kernel reports it,
	// and a down before that is no change to report.
	WaitFor(t, 20*time.Second, "the kernel reporting vid0 up", func() bool {
		out, err := exec.Command("ip", "-n", gm.NS, "link", "show", "vid0").CombinedOutput()
		return err == nil && strings.Contains(string(out), "state UP")
	})
	m = sg.Mark()
	run(t, "ip", "-n", gm.NS, "link", "set", "vid0", "down")
	_, m = sg.WaitEvent(t, m, 20*time.Second, "ntp_link_down")
	if query() {
		t.Error("answered through an interface that is down")
	}
	run(t, "ip", "-n", gm.NS, "link", "set", "vid0", "up")
	WaitFor(t, 20*time.Second, "NTP after the interface came back up", query)
	sg.WaitEvent(t, m, 20*time.Second, "ntp_link_up")
	// A new address on the same interface is served at once.
	run(t, "ip", "-n", gm.NS, "addr", "add", "10.91.0.7/24", "dev", "vid0")
	WaitFor(t, 20*time.Second, "NTP at the interface's new address", func() bool {
		out, err := cam.Run(Bin(t, "sitegm"), "ntp-query", "--timeout", "500ms", "10.91.0.7")
		return err == nil && strings.Contains(out, "stratum")
	})
	if n := len(sg.Lines(0, "event", "ntp_up")); n != 2 {
		t.Errorf("NTP server started %d times, want 2 (appeared, re-created; not again for down/up)", n)
	}
}

// A PHC that is not there at start (its NIC comes up later at boot) is
// waited for, and said so, rather than a reason to exit.
func TestWaitsForThePHC(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	cfg := SitegmConfig(t, dir, LoopbackNTP(t))
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), `discipline = "virtual"`, "discipline = \"phc\"\nphc = \"nic-not-yet\"", 1)), 0o644)
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	sg.WaitEvent(t, 0, 20*time.Second, "clock_waiting")
	if exited, _ := sg.Wait(3 * time.Second); exited {
		t.Fatalf("sitegm exited instead of waiting:\n%s", sg.Output())
	}
}

// A switch with IGMP snooping forwards multicast only to the ports that
// joined its group. A grandmaster whose cable is pulled and put back must
// be a member again when its link returns, or the slaves' Delay_Req never
// reach it. The kernel keeps sitegm's memberships and reports them again
// on link up; sitegm logs the bounce and keeps its sockets. Checked on a
// bridge with snooping and a querier: the GM's port leaves the bridge's
// group table with the link, is back in it after, and sitegm answers
// Delay_Req again; then again after its address changed.
func TestPTPLinkBounce(t *testing.T) {
	Parallel(t)
	needTools(t, "ptp4l", "bridge")
	lab := NewLab(t)
	run(t, "ip", "-n", lab.sw, "link", "set", "br0", "type", "bridge", "mcast_snooping", "1", "mcast_querier", "1")
	gm := lab.Host("gm", "10.78.0.1/24")
	au := lab.Host("au", "10.78.0.2/24")
	dir := t.TempDir()
	sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", SitegmConfig(t, dir,
		"[[ptp]]\ninterface = \"eth0\"\ntimestamping = \"software\"\ndante_v1 = false\n"))
	StartGNSSSim(t, dir)
	sg.WaitEvent(t, 0, 60*time.Second, "ptp_port_state", "ptp_state", "MASTER")
	au.Start(t, "ptp4l", "-f", Ptp4lConfig(t, dir, "slave.conf", Ptp4lSlaveConf), "-i", "eth0", "-m")
	member := func() bool {
		out, _ := exec.Command("bridge", "-n", lab.sw, "mdb", "show").CombinedOutput()
		return strings.Contains(string(out), "port "+gm.Port+" grp 224.0.1.129")
	}
	dreqs := func() uint64 {
		st := statusJSON(t, dir)
		if len(st.PTP) == 0 {
			return 0
		}
		return st.PTP[0].DelayReqs
	}
	WaitFor(t, 30*time.Second, "the GM's port in the bridge's group table", member)
	WaitFor(t, 30*time.Second, "Delay_Req reaching sitegm", func() bool { return dreqs() > 5 })

	m := sg.Mark()
	run(t, "ip", "-n", gm.NS, "link", "set", "eth0", "down")
	_, m = sg.WaitEvent(t, m, 20*time.Second, "ptp_link_down")
	WaitFor(t, 20*time.Second, "the bridge to drop the GM's membership with its link", func() bool { return !member() })
	time.Sleep(2 * time.Second) // the cable stays out for 2 s: the scenario, not a wait
	run(t, "ip", "-n", gm.NS, "link", "set", "eth0", "up")
	sg.WaitEvent(t, m, 20*time.Second, "ptp_link_up")
	WaitFor(t, 30*time.Second, "the GM's port a member again", member)
	n := dreqs()
	WaitFor(t, 30*time.Second, "Delay_Req reaching sitegm after the bounce", func() bool { return dreqs() > n+5 })
	// A new address (DHCP, an engineer renumbering the VLAN): sitegm is
	// bound to the device and joined by interface index, so nothing is
	// re-opened and the slave keeps being served from the new address.
	run(t, "ip", "-n", gm.NS, "addr", "del", "10.78.0.1/24", "dev", "eth0")
	run(t, "ip", "-n", gm.NS, "addr", "add", "10.78.0.9/24", "dev", "eth0")
	run(t, "ip", "-n", gm.NS, "route", "replace", "224.0.0.0/4", "dev", "eth0")
	n = dreqs()
	WaitFor(t, 30*time.Second, "Delay_Req reaching sitegm at its new address", func() bool { return dreqs() > n+5 })
	if c := len(sg.Lines(0, "event", "ptp_port_up")); c != 1 {
		t.Errorf("the PTP port was opened %d times, want 1 (a bounce keeps it)", c)
	}
}
