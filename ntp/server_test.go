package ntp

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/facebook/time/ntp/protocol"
)

var (
	hdr = Header{Leap: 0, Stratum: 1, Precision: -20, RefID: 0x47505300, RootDispersion: Short(time.Millisecond),
		RefTime: Timestamp(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))}
	rxT    = Timestamp(time.Date(2026, 11, 24, 12, 0, 1, 0, time.UTC))
	client = netip.MustParseAddr("10.0.0.2")
)

func request(vn, mode byte, origin, rx, tx uint64) []byte {
	b := make([]byte, HeaderLen)
	b[0] = vn<<3 | mode
	b[2] = 6
	binary.BigEndian.PutUint64(b[24:], origin)
	binary.BigEndian.PutUint64(b[32:], rx)
	binary.BigEndian.PutUint64(b[40:], tx)
	return b
}

func txAt(ts uint64) func() uint64 { return func() uint64 { return ts } }

func decode(t *testing.T, b []byte) protocol.Packet {
	t.Helper()
	var p protocol.Packet
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	return p
}

func TestClientModes(t *testing.T) {
	for _, c := range []struct {
		vn, mode       byte
		wantVN, wantMd byte
	}{
		{4, ModeClient, 4, ModeServer},
		{3, ModeClient, 3, ModeServer},
		{2, ModeClient, 2, ModeServer},
		{1, ModeReserved, 1, ModeServer}, // NTPv1 has no mode field
		{1, ModeClient, 1, ModeServer},
		{3, ModeSymmetricActive, 3, ModeSymmetricPassive}, // w32time
	} {
		r := NewResponder(Config{})
		dst := make([]byte, 64)
		ctx := uint64(0x1122334455667788)
		rep := r.Respond(dst, request(c.vn, c.mode, 0, 0, ctx), rxT, client, 0, &hdr, txAt(rxT+1000))
		if rep.N != HeaderLen {
			t.Errorf("v%d mode %d: no reply", c.vn, c.mode)
			continue
		}
		p := decode(t, dst[:rep.N])
		if vn, md := (p.Settings>>3)&7, p.Settings&7; vn != c.wantVN || md != c.wantMd {
			t.Errorf("v%d mode %d: reply v%d mode %d", c.vn, c.mode, vn, md)
		}
		orig := uint64(p.OrigTimeSec)<<32 | uint64(p.OrigTimeFrac)
		rx := uint64(p.RxTimeSec)<<32 | uint64(p.RxTimeFrac)
		tx := uint64(p.TxTimeSec)<<32 | uint64(p.TxTimeFrac)
		if orig != ctx || rx != rxT || tx != rxT+1000 || p.Stratum != 1 || p.ReferenceID != hdr.RefID ||
			p.Precision != -20 || p.Poll != 6 || p.RootDispersion != hdr.RootDispersion {
			t.Errorf("v%d mode %d: %+v", c.vn, c.mode, p)
		}
	}
}

func TestNoReply(t *testing.T) {
	r := NewResponder(Config{})
	dst := make([]byte, 64)
	for _, req := range [][]byte{
		request(4, ModeSymmetricPassive, 0, 0, 1), request(4, ModeServer, 0, 0, 1), request(4, ModeBroadcast, 0, 0, 1),
		request(2, ModeControl, 0, 0, 1), request(2, ModePrivate, 0, 0, 1), request(0, ModeClient, 0, 0, 1),
		request(4, ModeClient, 0, 0, 1)[:47],
		request(5, ModeClient, 0, 0, 1), request(6, ModeClient, 0, 0, 1), request(7, ModeSymmetricActive, 0, 0, 1),
	} {
		if rep := r.Respond(dst, req, rxT, client, 0, &hdr, txAt(rxT+1)); rep.N != 0 {
			t.Errorf("replied to %x", req)
		}
	}
	if r.Stats.Ignored != 5 || r.Stats.Malformed != 2 || r.Stats.BadVersion != 3 {
		t.Errorf("stats %+v", r.Stats)
	}
}

// A request with a MAC (68 bytes) gets a 48-byte reply: never longer than
// the request, and no MAC sitegm could not compute.
func TestReplyNotLonger(t *testing.T) {
	r := NewResponder(Config{})
	req := append(request(4, ModeClient, 0, 0, 7), make([]byte, 20)...)
	dst := make([]byte, 128)
	if rep := r.Respond(dst, req, rxT, client, 0, &hdr, txAt(rxT+1)); rep.N != HeaderLen {
		t.Errorf("reply length %d", rep.N)
	}
}

// The interleaved exchange as chrony's xleave client runs it: a basic
// request first, then requests whose origin is our previous receive
// timestamp; the reply then carries the precise transmit time of the
// previous reply and the client's receive time of it as origin.
func TestInterleaved(t *testing.T) {
	r := NewResponder(Config{})
	dst := make([]byte, 64)
	c1 := uint64(1000 << 32)
	rep1 := r.Respond(dst, request(4, ModeClient, 0, 0, c1), rxT, client, 0, &hdr, txAt(rxT+500))
	if rep1.WantTxStamp {
		t.Error("a basic request asked for a kernel timestamp")
	}
	r.Sent(rep1.Key, rxT+400)  // the kernel's time of reply 1
	c1rx := uint64(1001 << 32) // when the client got reply 1
	c2 := uint64(1002 << 32)
	rx2 := rxT + 1<<32
	rep2 := r.Respond(dst, request(4, ModeClient, rep1.Key, c1rx, c2), rx2, client, 0, &hdr, txAt(rx2+500))
	p := decode(t, dst[:rep2.N])
	orig := uint64(p.OrigTimeSec)<<32 | uint64(p.OrigTimeFrac)
	tx := uint64(p.TxTimeSec)<<32 | uint64(p.TxTimeFrac)
	rx := uint64(p.RxTimeSec)<<32 | uint64(p.RxTimeFrac)
	if !rep2.WantTxStamp || orig != c1rx || tx != rxT+400 || rx != rx2 || r.Stats.Interleaved != 1 {
		t.Errorf("interleaved reply: origin %x tx %x rx %x %+v", orig, tx, rx, rep2)
	}
	// An unknown origin: basic mode.
	rep3 := r.Respond(dst, request(4, ModeClient, 12345, c1rx, c2+1), rx2+10, client, 0, &hdr, txAt(rx2+600))
	if rep3.WantTxStamp || binary.BigEndian.Uint64(dst[24:]) != c2+1 {
		t.Error("an unknown origin was answered interleaved")
	}
}

func TestUniqueReceiveTimestamps(t *testing.T) {
	r := NewResponder(Config{})
	dst := make([]byte, 64)
	a := r.Respond(dst, request(4, ModeClient, 0, 0, 1), rxT, client, 0, &hdr, txAt(rxT+5))
	b := r.Respond(dst, request(4, ModeClient, 0, 0, 2), rxT, client, 0, &hdr, txAt(rxT+5))
	if a.Key == b.Key {
		t.Error("two replies share a receive timestamp")
	}
}

func TestRateLimitKoD(t *testing.T) {
	r := NewResponder(Config{RateInterval: time.Second, RateBurst: 4})
	dst := make([]byte, 64)
	flooder, other := netip.MustParseAddr("10.0.0.66"), netip.MustParseAddr("10.0.0.7")
	var ok, kods, drops int
	for i := 0; i < 100; i++ {
		rep := r.Respond(dst, request(4, ModeClient, 0, 0, uint64(i+1)<<20), rxT, flooder, int64(i)*int64(time.Millisecond), &hdr, txAt(rxT+1))
		switch {
		case rep.N == 0:
			drops++
		case dst[12] == 'R' && string(dst[12:16]) == "RATE":
			kods++
			p := decode(t, dst[:rep.N])
			ctx := uint64(i+1) << 20
			if p.Settings>>6 != 3 || p.Stratum != 0 || uint64(p.OrigTimeSec)<<32|uint64(p.OrigTimeFrac) != ctx ||
				uint64(p.RxTimeSec)<<32|uint64(p.RxTimeFrac) != ctx || uint64(p.TxTimeSec)<<32|uint64(p.TxTimeFrac) != ctx {
				t.Errorf("KoD %+v", p)
			}
		default:
			ok++
		}
		// The other client, within its own burst, is never limited.
		if i%40 == 0 {
			if rep := r.Respond(dst, request(4, ModeClient, 0, 0, 9), rxT, other, int64(i)*int64(time.Millisecond), &hdr, txAt(rxT+1)); rep.N == 0 || string(dst[12:16]) == "RATE" {
				t.Fatal("the other client was limited")
			}
		}
	}
	if ok != 4 || kods != 1 || drops != 95 {
		t.Errorf("ok %d KoD %d dropped %d", ok, kods, drops)
	}
}

// A flood of spoofed sources cannot grow the table and does not limit a
// real client.
func TestRateTableFixed(t *testing.T) {
	tab := NewRateTable(64, time.Second, 2)
	for i := 0; i < 100000; i++ {
		tab.check(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), int64(i))
	}
	if len(tab.sets)*4 != 64 {
		t.Errorf("table has %d entries", len(tab.sets)*4)
	}
}

// TestRateLimitSharedByWorkers: one client spreading its requests over
// the workers of an interface (a fresh source port per request lands on
// another SO_REUSEPORT socket) gets one burst in all, not one per worker.
func TestRateLimitSharedByWorkers(t *testing.T) {
	tab := NewRateTable(1024, time.Second, 8)
	workers := make([]*Responder, 4)
	for i := range workers {
		workers[i] = NewResponder(Config{RateInterval: time.Second, RateBurst: 8, Rate: tab})
	}
	dst := make([]byte, 64)
	answered := 0
	for i := 0; i < 400; i++ {
		rep := workers[i%len(workers)].Respond(dst, request(4, ModeClient, 0, 0, uint64(i+1)), rxT, client, int64(i)*int64(time.Millisecond), &hdr, txAt(rxT+1))
		if rep.N > 0 && string(dst[12:16]) != "RATE" {
			answered++
		}
	}
	// 8 at once, plus the credit that refilled over the 0.4 s.
	if answered > 8 {
		t.Errorf("%d answered over %d workers, burst 8", answered, len(workers))
	}
}

// TestTransmitStampPlausible: a kernel transmit time is stored only for
// the reply whose receive time it can follow (after it, within a second):
// a stamp attributed to the wrong reply can never make an interleaved
// reply claim a transmit time later than the client's receipt of it.
func TestTransmitStampPlausible(t *testing.T) {
	r := NewResponder(Config{})
	dst := make([]byte, 64)
	rep := r.Respond(dst, request(4, ModeClient, 0, 0, 1), rxT, client, 0, &hdr, txAt(rxT+500))
	estimate := binary.BigEndian.Uint64(dst[40:])
	for _, bad := range []uint64{rxT - 1, rxT, rxT + 1<<32, rxT + 5<<32} {
		r.Sent(rep.Key, bad)
		if got, _ := r.xl.lookup(rep.Key); got != estimate {
			t.Errorf("stamp %#x stored for a reply received at %#x", bad, rxT)
		}
	}
	r.Sent(rep.Key, rxT+400)
	if got, _ := r.xl.lookup(rep.Key); got != rxT+400 {
		t.Errorf("a plausible stamp was not stored: %#x", got)
	}
}

// TestStampPending: a reply built without a clock (the server stamps it
// as it leaves) goes out with the transmit time Stamp is given, never
// before its receipt, and the interleaved table keeps that time for the
// client's next, interleaved request; an interleaved reply's field
// keeps the previous reply's time; a reply built with a clock is left.
func TestStampPending(t *testing.T) {
	r := NewResponder(Config{})
	dst := make([]byte, 64)
	rep1 := r.Respond(dst, request(4, ModeClient, 0, 0, 1000<<32), rxT, client, 0, &hdr, nil)
	if !rep1.Pending || binary.BigEndian.Uint64(dst[40:]) != rxT+1 {
		t.Fatalf("pending basic reply: %+v, transmit %#x before Stamp", rep1, binary.BigEndian.Uint64(dst[40:]))
	}
	r.Stamp(dst, rep1, rxT+700)
	if got := binary.BigEndian.Uint64(dst[40:]); got != rxT+700 {
		t.Errorf("stamped basic reply carries %#x, want %#x", got, rxT+700)
	}
	// The interleaved follow-up carries reply 1's stamped time.
	rx2 := rxT + 1<<32
	rep2 := r.Respond(dst, request(4, ModeClient, rep1.Key, 1001<<32, 1002<<32), rx2, client, 0, &hdr, nil)
	if !rep2.Pending || !rep2.WantTxStamp || binary.BigEndian.Uint64(dst[40:]) != rxT+700 {
		t.Fatalf("interleaved reply %+v carries %#x, want reply 1's %#x", rep2, binary.BigEndian.Uint64(dst[40:]), rxT+700)
	}
	r.Stamp(dst, rep2, rx2+900)
	if got := binary.BigEndian.Uint64(dst[40:]); got != rxT+700 {
		t.Errorf("Stamp overwrote an interleaved reply's transmit time: %#x", got)
	}
	if got, _ := r.xl.lookup(rep2.Key); got != rx2+900 {
		t.Errorf("the table holds %#x for reply 2, want its stamp %#x", got, rx2+900)
	}
	// A stamp before the receipt (a clock read that went backwards):
	// receipt + 1.
	rep3 := r.Respond(dst, request(4, ModeClient, 0, 0, 2000<<32), rxT+5<<32, client, 0, &hdr, nil)
	r.Stamp(dst, rep3, rxT)
	if got := binary.BigEndian.Uint64(dst[40:]); got != rep3.Key+1 {
		t.Errorf("a stamp before the receipt gave %#x, want %#x", got, rep3.Key+1)
	}
	// A reply stamped by Respond itself is not touched.
	rep4 := r.Respond(dst, request(4, ModeClient, 0, 0, 3000<<32), rxT+6<<32, client, 0, &hdr, txAt(rxT+6<<32+50))
	r.Stamp(dst, rep4, rxT+7<<32)
	if rep4.Pending || binary.BigEndian.Uint64(dst[40:]) != rxT+6<<32+50 {
		t.Errorf("Stamp changed a reply Respond had stamped: %+v %#x", rep4, binary.BigEndian.Uint64(dst[40:]))
	}
}

func TestNoAllocation(t *testing.T) {
	r := NewResponder(Config{RateInterval: time.Millisecond, RateBurst: 1 << 20})
	dst := make([]byte, 64)
	req := request(4, ModeClient, 0, 0, 1)
	tx := txAt(rxT + 1)
	if a := testing.AllocsPerRun(1000, func() { r.Respond(dst, req, rxT, client, 0, &hdr, tx) }); a != 0 {
		t.Errorf("%v allocations per request", a)
	}
	if a := testing.AllocsPerRun(1000, func() { r.Stamp(dst, r.Respond(dst, req, rxT, client, 0, &hdr, nil), rxT+1) }); a != 0 {
		t.Errorf("%v allocations per pending request", a)
	}
}

func BenchmarkRespond(b *testing.B) {
	r := NewResponder(Config{RateInterval: time.Millisecond, RateBurst: 1 << 20})
	dst := make([]byte, 64)
	req := request(4, ModeClient, 0, 0, 1)
	tx := txAt(rxT + 1)
	for i := 0; b.Loop(); i++ {
		r.Respond(dst, req, rxT+uint64(i), client, int64(i), &hdr, tx)
	}
}

func FuzzRespond(f *testing.F) {
	f.Add(request(4, ModeClient, 0, 0, 1))
	f.Add(request(3, ModeSymmetricActive, 5, 6, 7))
	f.Add(request(1, ModeReserved, 0, 0, 1))
	f.Add(append(request(4, ModeClient, 0, 0, 1), make([]byte, 20)...))
	f.Add(request(2, ModeControl, 0, 0, 0))
	r := NewResponder(Config{RateInterval: time.Second, RateBurst: 8, RateTableSize: 64, XleaveTableSize: 64})
	f.Fuzz(func(t *testing.T, req []byte) {
		dst := make([]byte, HeaderLen)
		rep := r.Respond(dst, req, rxT, client, 0, &hdr, txAt(rxT+1))
		if rep.N > len(req) {
			t.Fatalf("reply of %d bytes to a request of %d", rep.N, len(req))
		}
		if rep.N > 0 {
			decode(t, dst[:rep.N])
		}
		// The same request stamped as it leaves (the rate table may
		// now refuse it): never longer, and it decodes.
		rep2 := r.Respond(dst, req, rxT+2, client, 0, &hdr, nil)
		r.Stamp(dst, rep2, rxT+3)
		if rep2.N > len(req) {
			t.Fatalf("pending reply of %d bytes to a request of %d", rep2.N, len(req))
		}
		if rep2.N > 0 {
			decode(t, dst[:rep2.N])
		}
	})
}

func TestShortRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]uint32{0: 0, 1: 1, time.Second: 1 << 16, time.Second + 1: 1<<16 + 1, 1000 * time.Hour: 0xFFFFFFFF} {
		if got := Short(d); got != want {
			t.Errorf("Short(%v) = %#x, want %#x", d, got, want)
		}
	}
}
