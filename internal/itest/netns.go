package itest

import (
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Lab is a small network inside namespaces this test creates: a switch
// (a Linux bridge in its own namespace) and hosts, each in a namespace with
// one interface, eth0, plugged into the switch. It stands in for a site's
// VLAN (this kernel has no 802.1Q module). Everything is removed when the
// test ends, whatever happened.
type Lab struct {
	t      testing.TB
	prefix string
	sw     string
	n      int
}

// Host is one namespace on the lab's switch.
type Host struct {
	NS   string
	Addr string // IPv4 address without the prefix length
	Port string // its port on the lab's bridge (Host only)
	lab  *Lab
}

// NeedRoot skips a test that needs root and the ip command.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces and veth); CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// NewLab creates the switch.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	NeedRoot(t)
	l := &Lab{t: t}
	l.prefix, l.sw = claimPrefix(t)
	t.Cleanup(l.destroy)
	run(t, "ip", "-n", l.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	run(t, "ip", "-n", l.sw, "link", "set", "br0", "up")
	run(t, "ip", "-n", l.sw, "link", "set", "lo", "up")
	return l
}

var (
	prefixMu sync.Mutex
	prefixes = map[string]bool{}
)

// claimPrefix picks a namespace prefix no other lab of this test binary
// holds and no existing namespace starts with (a run killed before its
// clean-up, a CI timeout or ^C, leaves its namespaces behind), and claims
// it by creating the switch's namespace: labs of tests running in
// parallel never share one.
func claimPrefix(t testing.TB) (prefix, sw string) {
	t.Helper()
	prefixMu.Lock()
	defer prefixMu.Unlock()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for {
		p := fmt.Sprintf("sgm%04x", rand.Intn(1<<16))
		if prefixes[p] || strings.Contains(string(out), p) {
			continue
		}
		if b, err := exec.Command("ip", "netns", "add", p+"sw").CombinedOutput(); err != nil {
			if strings.Contains(string(b), "exists") {
				continue // another process took it since the list
			}
			t.Fatalf("ip netns add %ssw: %v\n%s", p, err, b)
		}
		prefixes[p] = true
		return p, p + "sw"
	}
}

// Host creates a namespace with eth0 on the switch at cidr (a.b.c.d/n).
func (l *Lab) Host(name, cidr string) *Host {
	t := l.t
	t.Helper()
	l.n++
	ns := l.prefix + name
	run(t, "ip", "netns", "add", ns)
	peer := fmt.Sprintf("p%d%s", l.n, l.prefix[3:])
	run(t, "ip", "link", "add", "tmp"+peer, "type", "veth", "peer", "name", peer)
	run(t, "ip", "link", "set", "tmp"+peer, "netns", ns)
	run(t, "ip", "link", "set", peer, "netns", l.sw)
	run(t, "ip", "-n", ns, "link", "set", "tmp"+peer, "name", "eth0")
	run(t, "ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
	run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	// Multicast leaves through eth0 (there is no default route).
	run(t, "ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
	run(t, "ip", "-n", l.sw, "link", "set", peer, "master", "br0")
	run(t, "ip", "-n", l.sw, "link", "set", peer, "up")
	addr, _, _ := strings.Cut(cidr, "/")
	return &Host{NS: ns, Addr: addr, Port: peer, lab: l}
}

func (l *Lab) destroy() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(name, l.prefix) {
			// Processes still inside would keep it alive: kill them.
			pids, _ := exec.Command("ip", "netns", "pids", name).Output()
			for _, p := range strings.Fields(string(pids)) {
				exec.Command("kill", "-9", p).Run()
			}
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// Command prepares a command inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Start runs a command inside the namespace, stopped when the test ends.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, h.Command(name, args...))
}

// Run runs a command inside the namespace and returns its output.
func (h *Host) Run(name string, args ...string) (string, error) {
	out, err := h.Command(name, args...).CombinedOutput()
	return string(out), err
}

// InNS runs f on a thread switched into the host's network namespace:
// sockets it creates stay in that namespace after it returns.
func (h *Host) InNS(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Switch this thread into the namespace for f and back before
		// unlocking: a thread left in the namespace would make the test
		// process one of its "pids" (and the main thread, which Go never
		// terminates, may be the one locked here).
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := os.Open("/var/run/netns/" + h.NS)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// ListenUDP opens a UDP socket inside the host's namespace (a socket
// stays in the namespace it was created in), for tests that craft their
// own packets.
func (h *Host) ListenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	return h.ListenUDPOn(t, &net.UDPAddr{})
}

// ListenUDPOn is ListenUDP on a given local address.
func (h *Host) ListenUDPOn(t testing.TB, laddr *net.UDPAddr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.InNS(func() (err error) {
		c, err = net.ListenUDP("udp4", laddr)
		return err
	})
	if err != nil {
		t.Fatalf("socket in %s: %v", h.NS, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Bare creates a namespace with only lo, for hosts joined by Link.
func (l *Lab) Bare(name string) *Host {
	t := l.t
	t.Helper()
	ns := l.prefix + name
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return &Host{NS: ns, lab: l}
}

// Link joins two hosts with a veth pair (a point-to-point "VLAN"): ifA at
// cidrA in a, ifB at cidrB in b.
func (l *Lab) Link(a *Host, ifA, cidrA string, b *Host, ifB, cidrB string) {
	t := l.t
	t.Helper()
	l.n++
	ta, tb := fmt.Sprintf("la%d%s", l.n, l.prefix[3:]), fmt.Sprintf("lb%d%s", l.n, l.prefix[3:])
	run(t, "ip", "link", "add", ta, "type", "veth", "peer", "name", tb)
	for _, s := range []struct {
		h        *Host
		tmp, dev string
		cidr     string
	}{{a, ta, ifA, cidrA}, {b, tb, ifB, cidrB}} {
		run(t, "ip", "link", "set", s.tmp, "netns", s.h.NS)
		run(t, "ip", "-n", s.h.NS, "link", "set", s.tmp, "name", s.dev)
		run(t, "ip", "-n", s.h.NS, "addr", "add", s.cidr, "dev", s.dev)
		run(t, "ip", "-n", s.h.NS, "link", "set", s.dev, "up")
		if s.h.Addr == "" {
			s.h.Addr, _, _ = strings.Cut(s.cidr, "/")
		}
	}
	// PTP multicast leaves by the audio link.
	if ifA == "eth0" {
		exec.Command("ip", "-n", a.NS, "route", "add", "224.0.0.0/4", "dev", ifA).Run()
	}
	if ifB == "eth0" {
		exec.Command("ip", "-n", b.NS, "route", "add", "224.0.0.0/4", "dev", ifB).Run()
	}
}
