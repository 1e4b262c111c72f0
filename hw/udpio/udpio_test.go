package udpio

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestBatchRoundTripWithStamps(t *testing.T) {
	srv, err := Listen(Options{Port: 0, RXStamps: Software, TXStamps: Software})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := Listen(Options{Port: 0, RXStamps: Software})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// The kernel turns software receive stamping on for everyone with a
	// deferred static key: give it a moment after the first socket asks.
	time.Sleep(50 * time.Millisecond)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalPort()))
	outs := make([]Out, 10)
	for i := range outs {
		outs[i] = Out{Data: []byte{byte(i), 1, 2, 3}, To: to}
	}
	before := time.Now()
	if r := cli.WriteBatch(outs); r.Sent != 10 {
		t.Fatalf("sent %+v", r)
	}
	ms := make([]Msg, MaxBatch)
	got := 0
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	for got < 10 {
		n, err := srv.ReadBatch(ms)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:n] {
			if len(m.Data) != 4 || m.Data[0] != byte(got) || m.From.Port() != uint16(cli.LocalPort()) {
				t.Fatalf("datagram %d: % x from %v", got, m.Data, m.From)
			}
			if m.RX.Before(before.Add(-time.Millisecond)) || time.Since(m.RX) > time.Second {
				t.Fatalf("rx stamp %v (sent after %v)", m.RX, before)
			}
			got++
		}
	}
	// A reply with its software transmit timestamp.
	reply := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(cli.LocalPort()))
	sendStamped(t, func() error { return srv.WriteTo([]byte("sync"), reply) }, srv.TxStamp)
	if _, err := srv.TxStamp(10 * time.Millisecond); err != ErrNoTxStamp {
		t.Errorf("second read: %v", err)
	}
}

func TestReusePortSpreads(t *testing.T) {
	a, err := Listen(Options{Port: 0, ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(Options{Port: a.LocalPort(), ReusePort: true})
	if err != nil {
		t.Fatalf("second socket on the port: %v", err)
	}
	b.Close()
}

func BenchmarkReadWriteBatch(bm *testing.B) {
	srv, _ := Listen(Options{Port: 0, RXStamps: Software})
	defer srv.Close()
	cli, _ := Listen(Options{Port: 0})
	defer cli.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalPort()))
	outs := make([]Out, 32)
	for i := range outs {
		outs[i] = Out{Data: make([]byte, 44), To: to}
	}
	ms := make([]Msg, MaxBatch)
	bm.ReportAllocs()
	for i := 0; i < bm.N; i++ {
		cli.WriteBatch(outs)
		got := 0
		for got < len(outs) {
			n, _ := srv.ReadBatch(ms)
			got += n
		}
	}
}

// parseOOB reads the software and hardware stamps of SCM_TIMESTAMPING
// (the layout of struct scm_timestamping64) and skips other messages.
func TestParseStamps(t *testing.T) {
	cm := func(level, typ int32, data []byte) []byte {
		b := make([]byte, (unix.SizeofCmsghdr+len(data)+7)&^7)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.SizeofCmsghdr + len(data))
		copy(b[unix.SizeofCmsghdr:], data)
		return b
	}
	d := make([]byte, 48)
	binary.NativeEndian.PutUint64(d[0:], 100)
	binary.NativeEndian.PutUint64(d[8:], 5)
	binary.NativeEndian.PutUint64(d[32:], 200)
	binary.NativeEndian.PutUint64(d[40:], 7)
	oob := append(cm(unix.SOL_IP, unix.IP_TOS, []byte{0, 0, 0, 0}), cm(unix.SOL_SOCKET, unix.SO_TIMESTAMPING_NEW, d)...)
	sw, hw, _ := parseOOB(oob)
	if !sw.Equal(time.Unix(100, 5)) || !hw.Equal(time.Unix(200, 7)) {
		t.Errorf("sw %v hw %v", sw, hw)
	}
	clear(d[32:])
	if _, hw, _ := parseOOB(cm(unix.SOL_SOCKET, unix.SO_TIMESTAMPING, d)); !hw.IsZero() {
		t.Error("a zero hardware stamp was not treated as missing")
	}
	if a := testing.AllocsPerRun(100, func() { parseOOB(oob) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

// TestSender: the poller-free Sync socket sends to its destination from
// its bound port, gives the software transmit timestamp back, and fails
// cleanly once closed.
func TestSender(t *testing.T) {
	srv, err := Listen(Options{Port: 0, RXStamps: Software})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalPort()))
	if _, err := OpenUDPSender(Options{TXStamps: Software}); err == nil {
		t.Fatal("a sender without a destination opened")
	}
	s, err := OpenUDPSender(Options{Interface: "lo", Loopback: true, TXStamps: Software, Connect: to})
	if err != nil {
		t.Fatal(err)
	}
	local, err := s.LocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	sendStamped(t, func() error { return s.Write([]byte("sync")) }, s.TxStamp)
	ms := make([]Msg, MaxBatch)
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := srv.ReadBatch(ms)
	if err != nil || n != 1 || string(ms[0].Data) != "sync" || ms[0].From.Port() != local.Port() {
		t.Fatalf("received %d (%v): %q from %v, sender bound to %v", n, err, ms[0].Data, ms[0].From, local)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte("x")); err == nil {
		t.Error("write after close succeeded")
	}
	if _, err := s.TxStamp(time.Millisecond); err == nil {
		t.Error("tx stamp after close succeeded")
	}
	s.Close() // twice is fine
}

// A request to one of several local addresses (any 127.x.y.z on lo) is
// reported with that address, and a reply with Src leaves from it: a
// client connected to that address accepts it. Without Src the kernel
// would pick 127.0.0.1 and the connected client would never see it. The
// reply also carries a transmit-timestamp request in the same control
// buffer.
func TestPacketInfoRepliesFromTheAddressAsked(t *testing.T) {
	srv, err := Listen(Options{Port: 0, PacketInfo: true, RXStamps: Software, TXStampsPerPacket: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	asked := netip.MustParseAddr("127.0.0.5")
	cli, err := Listen(Options{Addr: netip.MustParseAddr("127.0.0.1"), Connect: netip.AddrPortFrom(asked, uint16(srv.LocalPort()))})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Write([]byte("req")); err != nil {
		t.Fatal(err)
	}
	ms := make([]Msg, MaxBatch)
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := srv.ReadBatch(ms)
	if err != nil || n != 1 {
		t.Fatalf("read %d: %v", n, err)
	}
	if ms[0].Dst != asked {
		t.Fatalf("Dst %v, want %v", ms[0].Dst, asked)
	}
	if r := srv.WriteBatch([]Out{{Data: []byte("resp"), To: ms[0].From, Src: ms[0].Dst, TxStamp: true}}); r.Sent != 1 {
		t.Fatalf("%+v", r)
	}
	cli.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err = cli.ReadBatch(ms)
	if err != nil || n != 1 || string(ms[0].Data) != "resp" || ms[0].From.Addr() != asked {
		t.Fatalf("reply: %d datagrams, %v, from %v", n, err, ms[0].From)
	}
	var got []string
	srv.ReadTxStamps(func(p []byte, _ time.Time) { got = append(got, string(p)) })
	if len(got) != 1 || got[0] != "resp" {
		t.Errorf("transmit timestamps for %q, want one for the reply", got)
	}
}

// sendStamped sends one datagram and checks that its software transmit
// timestamp, read back with stamp, comes just after the send.
func sendStamped(t *testing.T, send func() error, stamp func(time.Duration) (time.Time, error)) {
	t.Helper()
	sent := time.Now()
	if err := send(); err != nil {
		t.Fatal(err)
	}
	tx, err := stamp(100 * time.Millisecond)
	if err != nil {
		t.Fatalf("tx stamp: %v", err)
	}
	if d := tx.Sub(sent); d < -time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("tx stamp %v after the send", d)
	}
}

// TestBadDestinationCostsOnlyItself: a batch whose third and sixth
// datagrams go where the kernel refuses to send (port 0, as a request
// forged to come from port 0 would have it) still delivers the other eight, and
// WriteBatch says what failed. Before, sendmmsg stopped at the first
// refusal and the rest of the batch was lost.
func TestBadDestinationCostsOnlyItself(t *testing.T) {
	srv, err := Listen(Options{Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := Listen(Options{Port: 0, TXStampsPerPacket: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	good := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalPort()))
	outs := make([]Out, 10)
	for i := range outs {
		outs[i] = Out{Data: []byte{byte(i)}, To: good, TxStamp: true}
	}
	outs[2].To = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
	outs[5].To = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 0)
	r := cli.WriteBatch(outs)
	if r.Sent != 8 || r.Failed != 2 || r.Full != 0 || r.Err == nil {
		t.Fatalf("result %+v, want 8 sent and 2 failed", r)
	}
	ms := make([]Msg, MaxBatch)
	var seen []byte
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	for len(seen) < 8 {
		n, err := srv.ReadBatch(ms)
		if err != nil {
			t.Fatalf("received %v: %v", seen, err)
		}
		for _, m := range ms[:n] {
			seen = append(seen, m.Data[0])
		}
	}
	if string(seen) != string([]byte{0, 1, 3, 4, 6, 7, 8, 9}) {
		t.Errorf("received %v", seen)
	}
	// Every stamp names the datagram it belongs to: the refused ones
	// leave no gap that shifts the others.
	time.Sleep(20 * time.Millisecond)
	var stamped []byte
	cli.ReadTxStamps(func(p []byte, _ time.Time) { stamped = append(stamped, p...) })
	if string(stamped) != string(seen) {
		t.Errorf("stamps for %v, sent %v", stamped, seen)
	}
}

func TestCheckReplyTo(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	for _, c := range []struct {
		to   netip.AddrPort
		lo   bool
		want Refusal
	}{
		{ap("10.0.0.7:123"), false, RefuseNone},
		{ap("10.0.0.7:0"), false, RefusePortZero},
		{ap("0.0.0.0:123"), false, RefuseNotUnicast},
		{ap("224.0.1.129:320"), false, RefuseNotUnicast},
		{ap("255.255.255.255:123"), false, RefuseNotUnicast},
		{ap("240.0.0.1:123"), false, RefuseNotUnicast},
		{ap("127.0.0.1:123"), false, RefuseLoopback},
		{ap("127.0.0.1:123"), true, RefuseNone},
		{ap("[::1]:123"), true, RefuseNotUnicast},
	} {
		if got := CheckReplyTo(c.to, c.lo); got != c.want {
			t.Errorf("%v (lo %v): %q, want %q", c.to, c.lo, got, c.want)
		}
	}
}

func TestUDPPayload(t *testing.T) {
	ip := []byte{0x45, 0, 0, 31, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 123, 0, 123, 0, 11, 0, 0, 'a', 'b', 'c'}
	eth := append(make([]byte, 12), 0x08, 0x00)
	vlan := append(make([]byte, 12), 0x81, 0x00, 0, 10, 0x08, 0x00)
	for name, b := range map[string][]byte{"ip": ip, "eth": append(eth, ip...), "vlan": append(vlan, ip...)} {
		if p, ok := UDPPayload(b); !ok || string(p) != "abc" {
			t.Errorf("%s: %q %v", name, p, ok)
		}
	}
	for name, b := range map[string][]byte{"short": ip[:25], "arp": append(append(make([]byte, 12), 8, 6), ip...), "empty": nil} {
		if _, ok := UDPPayload(b); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzUDPPayload: whatever the error queue hands back, the parser stays
// within it and never panics.
func FuzzUDPPayload(f *testing.F) {
	ip := []byte{0x45, 0, 0, 31, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 123, 0, 123, 0, 11, 0, 0, 'a', 'b', 'c'}
	f.Add(ip)
	f.Add(append(append(make([]byte, 12), 0x81, 0x00, 0, 10, 0x08, 0x00), ip...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := UDPPayload(b); ok && len(p) > len(b) {
			t.Fatal("payload longer than the packet")
		}
	})
}
