package itest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sitegm/ntp"
)

// Issue 11: hostile and odd traffic on the audio and video LANs, each
// attack run against the invariant it must not break (docs/hostile-input.md).

// ptpWatch records when sitegm's Syncs and Announces arrive at a host of
// the LAN (host clock).
type ptpWatch struct {
	mu                   sync.Mutex
	syncs, syncsV1, anns []time.Time
}

func watchPTP(t *testing.T, h *Host) *ptpWatch {
	w := &ptpWatch{}
	for _, port := range []int{319, 320} {
		c := h.ListenUDPOn(t, &net.UDPAddr{Port: port})
		JoinGroup(t, c, "224.0.1.129")
		go func() {
			buf := make([]byte, 1500)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				now := time.Now()
				if n < 34 {
					continue
				}
				w.mu.Lock()
				switch {
				case buf[1]&0x0f == 2 && buf[0]&0x0f == 0:
					w.syncs = append(w.syncs, now)
				case buf[1]&0x0f == 2 && buf[0]&0x0f == 0xb:
					w.anns = append(w.anns, now)
				case buf[0] == 0 && buf[1] == 1 && n > 32 && buf[32] == 0: // v1 Sync (control 0)
					w.syncsV1 = append(w.syncsV1, now)
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// maxGap is the longest interval without an arrival between from and to.
func maxGap(ts []time.Time, from, to time.Time) time.Duration {
	prev, worst := from, time.Duration(0)
	for _, x := range ts {
		if x.Before(from) || x.After(to) {
			continue
		}
		worst = max(worst, x.Sub(prev))
		prev = x
	}
	return max(worst, to.Sub(prev))
}

func (w *ptpWatch) gaps(from, to time.Time) (sync, syncV1, ann time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maxGap(w.syncs, from, to), maxGap(w.syncsV1, from, to), maxGap(w.anns, from, to)
}

// ntpProbe is a legitimate NTP client: one request every `every`, each
// reply matched by its origin timestamp, offsets kept with their time.
type ntpProbe struct {
	mu        sync.Mutex
	sent, got int
	offsets   []offsetAt // server UTC minus host clock, ns
	exchanges []exchange
	pending   map[uint64]time.Time
}

// exchange is one answered request: the client's send and receipt (host
// clock), the server's receive and transmit times (served UTC) and its
// leap indicator (3: not synchronized).
type exchange struct {
	t1, t2, t3, t4 time.Time
	li             byte
}

// outside is how far an exchange's server times fall outside the client's
// send and receipt, both carried onto true UTC (truth: UTC minus host, ns):
// an honest server's times lie between them, whatever the path's
// asymmetry, which a loaded 2-CPU machine makes hundreds of µs.
func (e exchange) outside(truth func(time.Time) (float64, bool)) (time.Duration, bool) {
	a, ok1 := truth(e.t1)
	b, ok2 := truth(e.t4)
	if !ok1 || !ok2 {
		return 0, false
	}
	lo, hi := e.t1.Add(time.Duration(a)), e.t4.Add(time.Duration(b))
	return max(lo.Sub(e.t2), e.t3.Sub(hi), 0), true
}

// runNTPProbe asks server (an address, port 123, or address:port) every
// `every` until ctx ends.
func runNTPProbe(ctx context.Context, c *net.UDPConn, server string, every time.Duration) *ntpProbe {
	p := &ntpProbe{pending: map[uint64]time.Time{}}
	to := &net.UDPAddr{IP: net.ParseIP(server), Port: 123}
	if ap, err := netip.ParseAddrPort(server); err == nil {
		to = net.UDPAddrFromAddrPort(ap)
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			t4 := time.Now()
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			org := binary.BigEndian.Uint64(buf[24:])
			p.mu.Lock()
			t1, ok := p.pending[org]
			if ok {
				delete(p.pending, org)
				p.got++
				t2, t3 := ntp.ToTime(binary.BigEndian.Uint64(buf[32:])), ntp.ToTime(binary.BigEndian.Uint64(buf[40:]))
				off := (t2.Sub(t1) + t3.Sub(t4)) / 2
				p.offsets = append(p.offsets, offsetAt{at: t4, off: float64(off)})
				p.exchanges = append(p.exchanges, exchange{t1, t2, t3, t4, buf[0] >> 6})
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		req := make([]byte, 48)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			req[0] = 4<<3 | 3
			t1 := time.Now()
			ts := ntp.Timestamp(t1)
			binary.BigEndian.PutUint64(req[40:], ts)
			p.mu.Lock()
			p.pending[ts] = t1
			p.sent++
			p.mu.Unlock()
			c.WriteTo(req, to)
		}
	}()
	return p
}

// delayReqProbe is a legitimate PTP slave asking for its path delay in
// hybrid mode (unicast Delay_Req from port 320, unicast Delay_Resp back).
type delayReqProbe struct {
	mu        sync.Mutex
	sent, got int
}

func runDelayReqProbe(ctx context.Context, c *net.UDPConn, gm string, every time.Duration) *delayReqProbe {
	p := &delayReqProbe{}
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if n >= 54 && buf[0]&0x0f == 9 && binary.BigEndian.Uint64(buf[44:]) == 0x50524f4245fffe01 {
				p.mu.Lock()
				p.got++
				p.mu.Unlock()
			}
		}
	}()
	go func() {
		to := &net.UDPAddr{IP: net.ParseIP(gm), Port: 319}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
			c.WriteTo(delayReqMsg(seq, 0x50524f4245fffe01), to)
		}
	}()
	return p
}

// delayReqMsg is a unicast (hybrid) Delay_Req of domain 0.
func delayReqMsg(seq uint16, id uint64) []byte {
	b := make([]byte, 44)
	b[0], b[1] = 0x01, 0x02
	binary.BigEndian.PutUint16(b[2:], 44)
	b[6] = 0x04 // unicastFlag
	binary.BigEndian.PutUint64(b[20:], id)
	binary.BigEndian.PutUint16(b[28:], 1)
	binary.BigEndian.PutUint16(b[30:], seq)
	b[32], b[33] = 1, 0x7f
	return b
}

func ntpRequest(i int) []byte {
	b := make([]byte, 48)
	b[0] = 4<<3 | 3
	binary.BigEndian.PutUint64(b[40:], uint64(i+1)<<20)
	return b
}

// hostileLab is a grandmaster serving PTP (v2 and v1) and NTP on one LAN
// with a PTP slave, a client and an attacker, all on a /16 so that forged
// sources are on-link addresses nobody has.
type hostileLab struct {
	lab                 *Lab
	gm, slave, cli, atk *Host
	sg                  *Proc
	dir                 string
	prefix              netip.Prefix
}

func newHostileLab(t *testing.T, extra string) *hostileLab {
	h := &hostileLab{lab: NewLab(t), dir: t.TempDir(), prefix: netip.MustParsePrefix("10.77.0.0/16")}
	h.gm = h.lab.Host("gm", "10.77.0.1/16")
	h.slave = h.lab.Host("slave", "10.77.0.2/16")
	h.cli = h.lab.Host("cli", "10.77.0.3/16")
	h.atk = h.lab.Host("atk", "10.77.0.4/16")
	h.sg = h.gm.Start(t, Bin(t, "sitegm"), "run", "-c", SitegmConfig(t, h.dir, `[[ptp]]
interface = "eth0"
timestamping = "software"
[[ntp]]
interface = "eth0"
rate_interval = "50ms"
rate_burst = 16
`+extra))
	StartGNSSSim(t, h.dir)
	h.sg.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
	h.sg.WaitEvent(t, 0, 30*time.Second, "ptp_port_state", "ptp_state", "MASTER")
	return h
}

// rhythmKept fails t when, between start and end, the longest gap
// between the port's Syncs, v1 Syncs or Announces went beyond two
// intervals (125 ms, 250 ms; Announce 2 s): what no flood may cause.
func rhythmKept(t *testing.T, w *ptpWatch, start, end time.Time) {
	t.Helper()
	sync2, sync1, ann := w.gaps(start, end.Add(-200*time.Millisecond))
	t.Logf("longest gaps: Sync %v, v1 Sync %v, Announce %v", sync2, sync1, ann)
	if sync2 > 250*time.Millisecond || sync1 > 500*time.Millisecond || ann > 4*time.Second {
		t.Errorf("rhythm broken: Sync gap %v (interval 125 ms), v1 Sync gap %v (250 ms), Announce gap %v (2 s)", sync2, sync1, ann)
	}
}

// clientsKept fails t when the legitimate NTP client or PTP slave lost
// more than 1 % of its answers.
func clientsKept(t *testing.T, np *ntpProbe, dp *delayReqProbe) {
	t.Helper()
	np.mu.Lock()
	defer np.mu.Unlock()
	dp.mu.Lock()
	defer dp.mu.Unlock()
	ntpLoss := 1 - float64(np.got)/float64(np.sent)
	ptpLoss := 1 - float64(dp.got)/float64(dp.sent)
	t.Logf("legitimate NTP client: %d/%d answered (loss %.2f %%); PTP slave: %d/%d Delay_Resp (loss %.2f %%)",
		np.got, np.sent, 100*ntpLoss, dp.got, dp.sent, 100*ptpLoss)
	if ntpLoss > 0.01 || ptpLoss > 0.01 {
		t.Errorf("legitimate clients lost more than 1 %%: NTP %.2f %%, PTP %.2f %%", 100*ntpLoss, 100*ptpLoss)
	}
}

// TestFloodsNeverStopService (items 1 and 11): requests forged from
// on-link addresses that do not exist, so that every reply waits for
// address resolution, at 2,000/s for 3 s and at 5,000/s for 10 s. Syncs
// and Announces keep their rhythm (no gap over two intervals), and the
// legitimate NTP client and PTP slave keep at most 1 % loss, NTP offsets
// within a millisecond of the truth. Before, the workers and the port
// goroutine blocked on full send buffers: no Sync for half a minute and
// more, NTP silent as long. In the quiet group: the gaps it bounds are
// the daemon's under attack, not the other tests' load.
func TestFloodsNeverStopService(t *testing.T) {
	Quiet(t)
	h := newHostileLab(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchPTP(t, h.slave)
	np := runNTPProbe(ctx, h.cli.ListenUDP(t), h.gm.Addr, 50*time.Millisecond)
	dp := runDelayReqProbe(ctx, h.cli.ListenUDPOn(t, &net.UDPAddr{Port: 320}), h.gm.Addr, 125*time.Millisecond)
	raw := h.atk.RawSocket(t)
	gmNTP := netip.AddrPortFrom(netip.MustParseAddr(h.gm.Addr), 123)
	gmEv := netip.AddrPortFrom(netip.MustParseAddr(h.gm.Addr), 319)
	forged := func(i int) (netip.AddrPort, netip.AddrPort, []byte) {
		src := netip.AddrPortFrom(OnLinkNowhere(h.prefix, i/2), uint16(1024+i%50000))
		if i%2 == 0 {
			return src, gmNTP, ntpRequest(i)
		}
		return src, gmEv, delayReqMsg(uint16(i), 0x4154544b00000000|uint64(i))
	}
	start := time.Now()
	time.Sleep(3 * time.Second)
	n1 := raw.Flood(ctx, 2000, 3*time.Second, forged)
	time.Sleep(3 * time.Second)
	n2 := raw.Flood(ctx, 5000, 10*time.Second, func(i int) (netip.AddrPort, netip.AddrPort, []byte) { return forged(i + 100000) })
	time.Sleep(5 * time.Second)
	end := time.Now()
	cancel()
	time.Sleep(300 * time.Millisecond)
	t.Logf("flood: %d then %d forged requests", n1, n2)
	rhythmKept(t, w, start, end)
	clientsKept(t, np, dp)
	np.mu.Lock()
	defer np.mu.Unlock()
	truth := ReadTruth(t, filepath.Join(h.dir, "truth.json"))
	var errs []float64
	for _, o := range np.offsets {
		if want, ok := truthAt(truth, o.at.UnixNano()); ok {
			errs = append(errs, o.off-want)
		}
	}
	sort.Float64s(errs)
	var worstOutside time.Duration
	for _, e := range np.exchanges {
		if d, ok := e.outside(func(at time.Time) (float64, bool) { return truthAt(truth, at.UnixNano()) }); ok {
			worstOutside = max(worstOutside, d)
		}
	}
	t.Logf("legitimate NTP client: offset minus truth min %.0f ns median %.0f ns max %.0f ns, server times outside the exchange at most %v",
		errs[0], errs[len(errs)/2], errs[len(errs)-1], worstOutside)
	// The served time is right when it lies within each exchange; 100 µs
	// covers the truth's own interpolation and the clock's error bound.
	if worstOutside > 100*time.Microsecond {
		t.Errorf("an NTP answer's times fell %v outside its exchange", worstOutside)
	}
	// The kernel's own count of datagrams it dropped for want of room or
	// of a neighbour entry (reported to a send call as success): the
	// Syncs lost before were counted here.
	if out, err := h.gm.Run("nstat", "-az", "UdpSndbufErrors"); err == nil {
		if f := strings.Fields(out); len(f) >= 3 && f[len(f)-2] != "0" {
			t.Errorf("the kernel dropped %s of sitegm's datagrams (UdpSndbufErrors)", f[len(f)-2])
		}
	}
	st := statusJSON(t, h.dir)
	if len(st.PTP) != 1 || len(st.NTP) != 1 || st.PTP[0].Unresolved+st.NTP[0].Unresolved == 0 {
		t.Errorf("replies to forged on-link sources were not counted: %+v %+v", st.PTP, st.NTP)
	}
	t.Logf("status: ptp %+v", st.PTP)
	t.Logf("status: ntp %+v", st.NTP)
}

// TestSecondInstanceRefused (item 5): a second `sitegm run` on the same
// configuration, or one that would serve a port of the first, exits
// non-zero at once naming the first, and touches nothing of it: the first
// keeps answering NTP and `sitegm status`, its status socket stays.
func TestSecondInstanceRefused(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	ntpTable := LoopbackNTP(t)
	cfg := SitegmConfig(t, dir, ntpTable)
	first := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	first.WaitEvent(t, 0, 20*time.Second, "ntp_up")
	port := strings.TrimSpace(strings.Split(strings.Split(ntpTable, "port = ")[1], "\n")[0])
	sock := filepath.Join(dir, "status.sock")
	before, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	// Same file; then another file (its own status socket and drift file)
	// serving the first one's NTP port.
	dir2 := t.TempDir()
	for _, c := range []string{cfg, SitegmConfig(t, dir2, ntpTable)} {
		second := Start(t, Bin(t, "sitegm"), "run", "-c", c)
		exited, err := second.Wait(20 * time.Second)
		out := second.Output()
		if !exited || err == nil || !strings.Contains(out, fmt.Sprintf("(pid %d) already holds", first.Cmd.Process.Pid)) {
			t.Errorf("second instance on %s: exited %v (%v)\n%s", c, exited, err, tail(out, 5))
		}
		if len(second.Lines(0, "event", "ntp_up")) > 0 || strings.Contains(out, "drift") {
			t.Errorf("the second instance started serving:\n%s", out)
		}
	}
	now, err := os.Stat(sock)
	if err != nil || !os.SameFile(before, now) {
		t.Errorf("the first instance's status socket was replaced or removed: %v", err)
	}
	if out, err := exec.Command(Bin(t, "sitegm"), "ntp-query", "127.0.0.1:"+port).CombinedOutput(); err != nil {
		t.Errorf("the first instance stopped answering NTP: %v\n%s", err, out)
	}
	if out, err := exec.Command(Bin(t, "sitegm"), "status", "-c", cfg).CombinedOutput(); err != nil {
		t.Errorf("the first instance's status: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir2, "drift")); err == nil {
		t.Error("the second instance wrote a drift file")
	}
}

// TestNothingToServeRefused (item 2): check-config refuses an empty file,
// and a reload of a truncated file is refused while every port keeps
// serving.
func TestNothingToServeRefused(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	out, err := exec.Command(Bin(t, "sitegm"), "check-config", "-c", "/dev/null").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nothing to serve") {
		t.Errorf("check-config -c /dev/null: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ntpTable := LoopbackNTP(t)
	cfg := SitegmConfig(t, dir, ntpTable)
	port := strings.TrimSpace(strings.Split(strings.Split(ntpTable, "port = ")[1], "\n")[0])
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	sg.WaitEvent(t, 0, 20*time.Second, "ntp_up")
	full, _ := os.ReadFile(cfg)
	for _, broken := range []string{"", string(full[:strings.Index(string(full), "[[ntp]]")])} {
		os.WriteFile(cfg, []byte(broken), 0o644)
		m := sg.Mark()
		sg.Signal(syscall.SIGHUP)
		refused, _ := sg.WaitEvent(t, m, 20*time.Second, "reload_refused")
		if !strings.Contains(refused["msg"]+" "+refused["error"], "nothing to serve") {
			t.Errorf("the refusal does not say why: %v", refused)
		}
		if len(sg.Lines(0, "event", "ntp_removed")) > 0 {
			t.Fatalf("NTP was stopped by a reload of %q", broken)
		}
		if out, err := exec.Command(Bin(t, "sitegm"), "ntp-query", "127.0.0.1:"+port).CombinedOutput(); err != nil {
			t.Errorf("NTP stopped after a refused reload: %v\n%s", err, out)
		}
	}
}

// xleaveProbe is an NTP client in chrony's interleaved mode: each request
// names the server's receive time of the previous reply (origin) and the
// client's receipt of it (receive); the reply then carries that previous
// reply's precise transmit time. It records, for every interleaved
// reply, how much later that transmit time is than the client's receipt
// of the reply it describes (on the host clock, the served UTC moved by
// the truth), which can never be positive.
type xleaveProbe struct {
	mu          sync.Mutex
	sent, got   int
	interleaved int
	excess      []float64 // ns: transmit time minus receipt of the same reply
}

func runXleaveProbe(ctx context.Context, c *net.UDPConn, server string, every time.Duration, truth func(time.Time) float64) *xleaveProbe {
	p := &xleaveProbe{}
	to := &net.UDPAddr{IP: net.ParseIP(server), Port: 123}
	go func() {
		var prevRx, prevT4 uint64 // the server's rx of, and our receipt of, the previous reply
		var prevT4Host time.Time
		buf := make([]byte, 512)
		req := make([]byte, 48)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for ctx.Err() == nil {
			<-tick.C
			req[0] = 4<<3 | 3
			binary.BigEndian.PutUint64(req[24:], prevRx)
			binary.BigEndian.PutUint64(req[32:], prevT4)
			t1 := ntp.Timestamp(time.Now())
			binary.BigEndian.PutUint64(req[40:], t1)
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
			c.SetReadDeadline(time.Now().Add(every))
			c.WriteTo(req, to)
			for {
				n, err := c.Read(buf)
				t4 := time.Now()
				if err != nil {
					prevRx, prevT4 = 0, 0 // lost: start again in basic mode
					break
				}
				org := binary.BigEndian.Uint64(buf[24:])
				if n < 48 || (org != t1 && (prevT4 == 0 || org != prevT4)) {
					continue // a stale reply
				}
				p.mu.Lock()
				p.got++
				if org == prevT4 && prevT4 != 0 {
					// Interleaved: buf[40:] is the previous reply's send time.
					p.interleaved++
					tx := ntp.ToTime(binary.BigEndian.Uint64(buf[40:]))
					host := tx.Add(-time.Duration(truth(prevT4Host)))
					p.excess = append(p.excess, float64(host.Sub(prevT4Host)))
				}
				p.mu.Unlock()
				prevRx, prevT4, prevT4Host = binary.BigEndian.Uint64(buf[32:]), ntp.Timestamp(t4), t4
				break
			}
		}
	}()
	return p
}

// TestPortZeroAndInterleaved (item 7): requests from UDP source port 0
// (which the kernel refuses to answer) mixed into the batches of
// legitimate clients. The legitimate clients lose at most 1 %, and no
// interleaved reply ever carries a transmit time later than its client's
// receipt of that reply. Before, sendmmsg stopped at the refused reply,
// dropping the rest of its batch (10-12 % of legitimate clients), and
// the failed send shifted the transmit-timestamp keys, so interleaved
// replies carried other replies' times (up to +1.05 s) until restart.
// In the quiet group, as TestFloodsNeverStopService.
func TestPortZeroAndInterleaved(t *testing.T) {
	Quiet(t)
	h := newHostileLab(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	truthFile := filepath.Join(h.dir, "truth.json")
	var tmu sync.Mutex
	var truth []Truth
	truthNow := func(at time.Time) float64 {
		tmu.Lock()
		defer tmu.Unlock()
		v, ok := truthAt(truth, at.UnixNano())
		if !ok {
			truth = ReadTruth(t, truthFile)
			v, _ = truthAt(truth, at.UnixNano())
		}
		return v
	}
	// Three interleaved clients, so that their replies' transmit stamps
	// interleave in the server's batches as chronyd's do on a real LAN.
	// Each from an address of its own, within the rate limit.
	var xps []*xleaveProbe
	for _, a := range h.cli.AddAddresses(t, h.prefix, 2, 3) {
		c := h.cli.ListenUDPOn(t, &net.UDPAddr{IP: a.AsSlice()})
		xps = append(xps, runXleaveProbe(ctx, c, h.gm.Addr, 50*time.Millisecond, truthNow))
	}
	np := runNTPProbe(ctx, h.slave.ListenUDP(t), h.gm.Addr, 50*time.Millisecond)
	raw := h.atk.RawSocket(t)
	gm := netip.AddrPortFrom(netip.MustParseAddr(h.gm.Addr), 123)
	// Port 0 from 200 real addresses of the attacker's host (each within
	// the rate limit: 15 a second), 3,000 a second in all, sharing the
	// server's batches with the legitimate clients.
	atk := h.atk.AddAddresses(t, h.prefix, 1, 200)
	// Half of them interleaved: the attacker learns one of the server's
	// receive timestamps from an honest exchange, and names it as origin,
	// so that the server wants a transmit stamp of the reply it cannot send.
	learn := h.atk.ListenUDP(t)
	reply := ntpAsk(t, learn, h.gm.Addr, 4<<3|3, time.Second)
	if reply == nil {
		t.Fatal("no reply to the attacker's honest request")
	}
	serverRx := binary.BigEndian.Uint64(reply[32:])
	time.Sleep(2 * time.Second)
	n := raw.Flood(ctx, 3000, 10*time.Second, func(i int) (netip.AddrPort, netip.AddrPort, []byte) {
		req := ntpRequest(i)
		if i%2 == 0 {
			binary.BigEndian.PutUint64(req[24:], serverRx)
			binary.BigEndian.PutUint64(req[32:], 1)
		}
		return netip.AddrPortFrom(atk[i%len(atk)], 0), gm, req
	})
	time.Sleep(2 * time.Second)
	cancel()
	time.Sleep(200 * time.Millisecond)
	xp := &xleaveProbe{}
	for _, p := range xps {
		p.mu.Lock()
		xp.sent += p.sent
		xp.got += p.got
		xp.interleaved += p.interleaved
		xp.excess = append(xp.excess, p.excess...)
		p.mu.Unlock()
	}
	np.mu.Lock()
	defer np.mu.Unlock()
	sort.Float64s(xp.excess)
	if len(xp.excess) < 100 {
		t.Fatalf("only %d interleaved replies of %d", len(xp.excess), xp.got)
	}
	worst := xp.excess[len(xp.excess)-1]
	t.Logf("%d port-0 requests; interleaved client %d/%d answered, %d interleaved, transmit time minus receipt: min %.0f median %.0f max %.0f ns; basic client %d/%d",
		n, xp.got, xp.sent, xp.interleaved, xp.excess[0], xp.excess[len(xp.excess)/2], worst, np.got, np.sent)
	// The served clock and the host differ by the truth, known to a few
	// µs: a transmit time later than the receipt by more than 100 µs is
	// another reply's.
	if worst > 100e3 {
		t.Errorf("an interleaved reply carried a transmit time %.0f ns after its client received it", worst)
	}
	for _, c := range []struct {
		name      string
		got, sent int
	}{{"interleaved", xp.got, xp.sent}, {"basic", np.got, np.sent}} {
		if loss := 1 - float64(c.got)/float64(c.sent); loss > 0.01 {
			t.Errorf("%s client lost %.2f %%", c.name, 100*loss)
		}
	}
	st := statusJSON(t, h.dir)
	if len(st.NTP) != 1 || st.NTP[0].Refused == 0 {
		t.Errorf("port-0 requests not counted as refused: %+v", st.NTP)
	}
}
