package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"sitegm/internal/peers"
	"sitegm/internal/status"
	"sitegm/lab"
)

// twoNets makes a redundant Dante site's two networks, physically apart:
// namespace gm (sitegm) with eA and eB, each a veth pair to its own
// namespace (na: pA, 10.31.0.2/24; nb: pB, 10.32.0.2/24). It returns
// what removes them.
func twoNets() (remove func()) {
	for _, ns := range []string{"gm", "na", "nb"} {
		must(sh("ip", "netns", "add", ns))
	}
	remove = func() {
		for _, ns := range []string{"gm", "na", "nb"} {
			sh("ip", "netns", "del", ns)
		}
	}
	const v6off = "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; ip link set lo up"
	netns("gm", v6off)
	for _, n := range []struct{ ns, gmDev, dev, net string }{{"na", "eA", "pA", "31"}, {"nb", "eB", "pB", "32"}} {
		must(sh("ip", "link", "add", n.gmDev, "type", "veth", "peer", "name", n.dev))
		must(sh("ip", "link", "set", n.gmDev, "netns", "gm"))
		must(sh("ip", "link", "set", n.dev, "netns", n.ns))
		netns("gm", fmt.Sprintf("ip addr add 10.%s.0.1/24 dev %s; ip link set %s up", n.net, n.gmDev, n.gmDev))
		netns(n.ns, fmt.Sprintf("%s; ip addr add 10.%s.0.2/24 dev %s; ip link set %s up", v6off, n.net, n.dev, n.dev))
	}
	return remove
}

// second-phc: the module gives two PHCs, the pulse on PHC 0's pin, each
// with its own natural frequency error (--freq-error, --freq-error2), as
// two NICs of a redundant Dante site do. sitegm disciplines PHC 0 and
// slaves PHC 1 to it (clock.slave_phcs: veth has no PHC of its own, so
// the lab names it); it serves the primary and the secondary network, on
// their own veth pairs, each followed by ptp4l. Judged: PHC 0 within the
// bound sitegm advertises of the truth, PHC 1 within that plus the slave's
// own bound, every second for 20 s; both followers on the served time;
// then someone else steps PHC 1 by 1 ms: sitegm says so, steps it back,
// and PHC 0 stays within its bound throughout (it is never stepped).
func secondPHCScenario(p params, r *lab.Result) {
	const dir = "/tmp/secondphc"
	dev := loadModuleWith(p, 0, 2)
	defer twoNets()()
	clock := phcClock(dev.phc, true) + fmt.Sprintf("\nslave_phcs = [%q]", dev.phc1)
	s := startSitegm(dir, "phc:"+dev.phc+":0", clock, `[[ptp]]
interface = "eA"
timestamping = "software"
[[ptp]]
interface = "eB"
timestamping = "software"
`+ntpLo, "ip", "netns", "exec", "gm")
	defer s.stop()
	var slaves []*proc
	for _, n := range []struct{ ns, dev string }{{"na", "pA"}, {"nb", "pB"}} {
		conf := fmt.Sprintf("%s/ptp4l-%s.conf", dir, n.dev)
		os.WriteFile(conf, []byte(peers.Ptp4lSlave+"uds_address /run/ptp4l-"+n.dev+"\n"), 0o644)
		sl := start("ip", "netns", "exec", n.ns, "ptp4l", "-f", conf, "-i", n.dev, "-m")
		defer sl.stop()
		slaves = append(slaves, sl)
	}
	st := s.waitState(120*time.Second, "LOCKED", 6)
	r.Figures["locked_after_s"] = round(st.Uptime, 1)
	s.waitSettled(60*time.Second, 5, 20*time.Nanosecond)
	s.waitSlaveLocked(60 * time.Second)

	// 1. Both PHCs against the truth, each within what sitegm says of it.
	e0, b0, e1, b1, last := s.measureSlave(20)
	r.Figures["phc0_minus_truth_max_ns"] = maxAbs(e0)
	r.Figures["phc1_minus_truth_max_ns"] = maxAbs(e1)
	r.Figures["phc0_bound_ns"] = b0[len(b0)-1]
	r.Figures["phc1_bound_ns"] = b1[len(b1)-1]
	r.Figures["slave_bound_ns"] = last.BoundNS
	r.Figures["slave_window_ns"] = last.WindowNS
	r.Figures["slave_freq_ppb"] = round(last.FrequencyPPB, 0)
	pass := within(e0, b0) == len(e0) && within(e1, b1) == len(e1)
	if !pass {
		r.Notes = append(r.Notes, fmt.Sprintf("phc0 %v bound %v; phc1 %v bound %v", e0, b0, e1, b1))
	}

	// 2. The followers on both networks read the one clock. ptp4l runs
	// free on CLOCK_REALTIME, never steered here: its offset less the
	// system clock's own offset from the truth is its error.
	n := readNow()
	c := float64(n.real - (n.truth - taiUTC))
	var meds []float64
	for i, sl := range slaves {
		m := median(ptp4lErrors(sl, c))
		meds = append(meds, m)
		r.Figures[fmt.Sprintf("ptp4l_net%s_median_ns", []string{"A", "B"}[i])] = round(m, 0)
	}
	// Software stamps on veth under an emulated CPU: the path's bound
	// (the vlan scenario's, 50 µs), not the clock's.
	const pathBound = 50e3
	follow := math.Abs(meds[0]) < pathBound && math.Abs(meds[1]) < pathBound
	if !follow {
		r.Notes = append(r.Notes, fmt.Sprintf("ptp4l medians %v ns", meds))
	}

	// 3. Someone else steps PHC 1 by 1 ms (another phc2sys, phc_ctl).
	mark := len(s.p.output())
	steps0 := strings.Count(s.p.output(), "event=clock_stepped")
	writeDebug("step_phc1", "1000000")
	var e0s, b0s []float64
	seen := false
	for i := 0; i < 30 && !seen; i++ {
		st, err := s.status()
		now := readNow()
		if err == nil {
			e0s = append(e0s, float64(now.phc-now.truth))
			b0s = append(b0s, float64(st.Clock.EstErrorNS))
		}
		seen = strings.Contains(s.p.output()[mark:], "event=phc_slave_jumped")
		time.Sleep(time.Second)
	}
	r.Figures["jump_seen"] = seen
	s.waitSlaveLocked(60 * time.Second)
	f0, g0, f1, g1, _ := s.measureSlave(10)
	e0s, b0s = append(e0s, f0...), append(b0s, g0...)
	r.Figures["phc1_after_jump_max_ns"] = maxAbs(f1)
	r.Figures["phc0_during_jump_max_ns"] = maxAbs(e0s)
	untouched := within(e0s, b0s) == len(e0s) && strings.Count(s.p.output(), "event=clock_stepped") == steps0
	back := within(f1, g1) == len(f1)
	if !seen || !untouched || !back {
		r.Notes = append(r.Notes, fmt.Sprintf("jump seen %v; phc0 %v bound %v; phc1 after %v bound %v", seen, e0s, b0s, f1, g1))
	}
	r.Pass = pass && follow && seen && untouched && back
}

// waitSlaveLocked waits for the one slave PHC to be LOCKED; the panic
// names its last status and sitegm's slave events.
func (s *sitegm) waitSlaveLocked(timeout time.Duration) {
	var last []status.SlavePHC
	defer func() {
		if e := recover(); e != nil {
			var evs []string
			for _, l := range strings.Split(s.p.output(), "\n") {
				if strings.Contains(l, "event=phc_slave") {
					evs = append(evs, l)
				}
			}
			panic(fmt.Errorf("%v: slave PHCs %+v; events:\n%s", e, last, strings.Join(evs, "\n")))
		}
	}()
	waitFor(timeout, "the slave PHC LOCKED", func() bool {
		st, err := s.status()
		if err != nil {
			return false
		}
		last = st.Clock.SlavePHCs
		return len(last) == 1 && last[0].State == "LOCKED"
	})
}

// measureSlave reads the module every second for n seconds: PHC 0 and
// PHC 1 against the truth, with the bounds sitegm gives (the clock's, and
// the clock's plus the slave's); last is the slave's final status.
func (s *sitegm) measureSlave(n int) (e0, b0, e1, b1 []float64, last status.SlavePHC) {
	for i := 0; i < n; i++ {
		st, err := s.status()
		if err != nil {
			panic(err)
		}
		now := readNow()
		if len(st.Clock.SlavePHCs) != 1 {
			panic(fmt.Errorf("status shows %d slave PHCs", len(st.Clock.SlavePHCs)))
		}
		last = st.Clock.SlavePHCs[0]
		e0 = append(e0, float64(now.phc-now.truth))
		e1 = append(e1, float64(now.phc1-now.truth))
		b0 = append(b0, float64(st.Clock.EstErrorNS))
		b1 = append(b1, float64(st.Clock.EstErrorNS+last.BoundNS))
		time.Sleep(time.Second)
	}
	return e0, b0, e1, b1, last
}
