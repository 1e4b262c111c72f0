package ntp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestClientAgainstResponder: a request answered by sitegm's own
// responder, whose clock is 3 ms ahead, parses into a sample whose offset
// is those 3 ms; every way a reply can be wrong is refused.
func TestClientAgainstResponder(t *testing.T) {
	r := NewResponder(Config{})
	h := Header{Stratum: 1, Precision: -20, RefID: 0x47505300, RootDispersion: Short(20 * time.Microsecond)}
	t1 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ahead := 3 * time.Millisecond
	req := make([]byte, HeaderLen)
	tx := Timestamp(t1)
	Request(req, tx)
	rep := make([]byte, HeaderLen)
	// Half a millisecond each way, 100 µs in the server.
	t2 := t1.Add(500*time.Microsecond + ahead)
	t3 := t2.Add(100 * time.Microsecond)
	n := r.Respond(rep, req, Timestamp(t2), netip.MustParseAddr("10.0.0.9"), 1, &h, func() uint64 { return Timestamp(t3) }).N
	s, err := ParseReply(rep[:n], tx)
	if err != nil {
		t.Fatal(err)
	}
	t4 := t3.Add(-ahead + 500*time.Microsecond)
	off, delay := s.Offset(t1, t4)
	if d := off - ahead; d < -time.Microsecond || d > time.Microsecond || delay < 999*time.Microsecond || delay > 1001*time.Microsecond {
		t.Errorf("offset %v delay %v", off, delay)
	}
	if s.Stratum != 1 || s.RootDisp < 20*time.Microsecond || s.RootDisp > 40*time.Microsecond {
		t.Errorf("%+v", s)
	}

	bad := func(mut func(b []byte)) error {
		b := append([]byte(nil), rep[:n]...)
		mut(b)
		_, err := ParseReply(b, tx)
		return err
	}
	for name, c := range map[string]struct {
		mut  func(b []byte)
		want error
	}{
		"short":    {func(b []byte) {}, nil},
		"mode 2":   {func(b []byte) { b[0] = b[0]&^7 | ModeSymmetricPassive }, ErrMode},
		"v5":       {func(b []byte) { b[0] = b[0]&^0x38 | 5<<3 }, ErrVersion},
		"bogus":    {func(b []byte) { b[31]++ }, ErrBogus},
		"leap 3":   {func(b []byte) { b[0] |= 0xC0 }, ErrUnsync},
		"st 16":    {func(b []byte) { b[1] = 16 }, ErrUnsync},
		"zero rx":  {func(b []byte) { binary.BigEndian.PutUint64(b[32:], 0) }, ErrZeroTime},
		"backward": {func(b []byte) { binary.BigEndian.PutUint64(b[40:], binary.BigEndian.Uint64(b[32:])-1<<32) }, ErrBackwards},
		"huge":     {func(b []byte) { binary.BigEndian.PutUint32(b[8:], 17<<16) }, ErrHugeRootDist},
	} {
		if name == "short" {
			if _, err := ParseReply(rep[:40], tx); err != ErrShort {
				t.Errorf("short: %v", err)
			}
			continue
		}
		if err := bad(c.mut); err != c.want {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	err = bad(func(b []byte) { b[1] = 0; copy(b[12:], "RATE") })
	var k KissError
	if !errors.As(err, &k) || k.Code != "RATE" {
		t.Errorf("kiss: %v", err)
	}
}

// FuzzParseReply: any reply parses without a panic, and one that is
// accepted has its timestamps in order and bounded root distances.
func FuzzParseReply(f *testing.F) {
	rep := make([]byte, HeaderLen)
	rep[0], rep[1] = 4<<3|ModeServer, 2
	binary.BigEndian.PutUint64(rep[24:], 42)
	binary.BigEndian.PutUint64(rep[32:], Timestamp(time.Unix(1_800_000_000, 0)))
	binary.BigEndian.PutUint64(rep[40:], Timestamp(time.Unix(1_800_000_000, 1000)))
	f.Add(rep, uint64(42))
	f.Add(append([]byte{0xE4, 0, 0, 0}, make([]byte, 60)...), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, tx uint64) {
		s, err := ParseReply(b, tx)
		if err == nil && (s.Transmit.Before(s.Receive) || s.RootDelay > 16*time.Second || s.Stratum == 0 || s.Stratum > 15) {
			t.Fatalf("accepted %+v", s)
		}
	})
}

// TestInterleavedAgainstResponder: a second request in interleaved mode,
// answered by sitegm's responder, completes the first exchange with the
// precise transmit time of its reply (given to the responder by Sent, as
// the kernel's transmit timestamp is); a server without the state (the
// first request again) answers in basic mode, which is taken as such.
func TestInterleavedAgainstResponder(t *testing.T) {
	r := NewResponder(Config{})
	h := Header{Stratum: 1, Precision: -20, RefID: 0x47505300}
	addr := netip.MustParseAddr("10.0.0.9")
	ahead, oneWay := 3*time.Millisecond, 500*time.Microsecond
	t1 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	exchange := func(req []byte, t1 time.Time, late time.Duration) (rep []byte, t4 time.Time) {
		t2 := t1.Add(oneWay + ahead)
		t3 := t2.Add(100 * time.Microsecond) // what the reply says
		rep = make([]byte, HeaderLen)
		out := r.Respond(rep, req, Timestamp(t2), addr, 1, &h, func() uint64 { return Timestamp(t3) })
		// The reply really left late (the precise timestamp says so).
		r.Sent(out.Key, Timestamp(t3.Add(late)))
		return rep[:out.N], t3.Add(late - ahead + oneWay)
	}
	req := make([]byte, HeaderLen)
	tx1 := Timestamp(t1)
	Request(req, tx1)
	rep, t4 := exchange(req, t1, 200*time.Microsecond)
	s, inter, rx, err := ParseReplyInterleaved(rep, tx1, Exchange{})
	if err != nil || inter {
		t.Fatalf("first: %v %v", err, inter)
	}
	// Basic mode: the reply's transmit timestamp is 200 µs early.
	if off, _ := s.Offset(t1, t4); (off - ahead + 100*time.Microsecond).Abs() > time.Microsecond {
		t.Errorf("basic offset %v", off)
	}
	prev := Exchange{T1: t1, T4: t4, T2: rx}
	t1b := t1.Add(16 * time.Second)
	tx2 := Timestamp(t1b)
	RequestInterleaved(req, tx2, prev)
	rep2, _ := exchange(req, t1b, 0)
	s2, inter, _, err := ParseReplyInterleaved(rep2, tx2, prev)
	if err != nil || !inter {
		t.Fatalf("second: %v interleaved %v", err, inter)
	}
	if off, delay := s2.Offset(prev.T1, prev.T4); (off-ahead).Abs() > time.Microsecond || (delay-2*oneWay).Abs() > time.Microsecond {
		t.Errorf("interleaved: offset %v delay %v, want %v and %v", off, delay, ahead, 2*oneWay)
	}
	// A reply naming neither our transmit nor prev's T4 is bogus.
	binary.BigEndian.PutUint64(rep2[24:], 7)
	if _, _, _, err := ParseReplyInterleaved(rep2, tx2, prev); err != ErrBogus {
		t.Errorf("bogus: %v", err)
	}
}

// FuzzParseReplyInterleaved: no panic, and an accepted reply's
// timestamps are in order, whichever mode it is taken in.
func FuzzParseReplyInterleaved(f *testing.F) {
	prevT4 := time.Unix(1_800_000_000, 5000)
	rep := make([]byte, HeaderLen)
	rep[0], rep[1] = 4<<3|ModeServer, 2
	binary.BigEndian.PutUint64(rep[24:], Timestamp(prevT4))
	binary.BigEndian.PutUint64(rep[32:], Timestamp(time.Unix(1_800_000_016, 0)))
	binary.BigEndian.PutUint64(rep[40:], Timestamp(time.Unix(1_800_000_000, 3000)))
	f.Add(rep, uint64(42), Timestamp(time.Unix(1_800_000_000, 1000)))
	f.Add(rep, uint64(42), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, tx, prevT2 uint64) {
		s, _, _, err := ParseReplyInterleaved(b, tx, Exchange{T1: prevT4.Add(-time.Millisecond), T4: prevT4, T2: prevT2})
		if err == nil && (s.Transmit.Before(s.Receive) || s.Stratum == 0 || s.Stratum > 15) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
