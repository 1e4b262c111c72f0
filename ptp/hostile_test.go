package ptp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// Tests of what a hostile or broken node on the audio LAN can send, each
// asserting the invariant the port keeps (docs/hostile-input.md, issue 11).

func announceWith(id protocol.ClockIdentity, prio1 uint8, logInterval int8, gm protocol.ClockIdentity, seq uint16) []byte {
	a := protocol.Announce{Header: protocol.Header{
		SdoIDAndMsgType: protocol.NewSdoIDAndMsgType(protocol.MessageAnnounce, 0), Version: 2, MessageLength: 64,
		SourcePortIdentity: protocol.PortIdentity{ClockIdentity: id, PortNumber: 1}, SequenceID: seq, ControlField: 5,
		LogMessageInterval: protocol.LogInterval(logInterval),
	}, AnnounceBody: protocol.AnnounceBody{GrandmasterPriority1: prio1, GrandmasterPriority2: 128, GrandmasterIdentity: gm,
		GrandmasterClockQuality: protocol.ClockQuality{ClockClass: 6, ClockAccuracy: 0x21, OffsetScaledLogVariance: 0x4e5d}}}
	b, _ := a.MarshalBinary()
	return b
}

func aes67Port() *Port {
	return testPort(func(c *Config) { c.AnnounceRange = Profiles["aes67"].LogAnnounceRange })
}

// Item 3: two Announces claiming an interval of 2^30 s (or 2^127) from a
// better master make the port PASSIVE, and it is MASTER again within
// announceReceiptTimeout of the last Announce at the interval clamped to
// the profile's range (aes67: at most 2^4 s, so 3 x 16 s).
func TestForeignIntervalClamped(t *testing.T) {
	for _, li := range []int8{30, 127, 5, -128} {
		p := aes67Port()
		now := t0.Add(6 * time.Second)
		p.Tick(now)
		from := netip.MustParseAddrPort("10.0.0.66:320")
		p.Receive(announceWith(0x6666, 1, li, 0x6666, 1), now, from, now)
		now = now.Add(time.Second)
		p.Receive(announceWith(0x6666, 1, li, 0x6666, 2), now, from, now)
		clamped := max(0, min(4, int(li)))
		limit := 3 * Interval(int8(clamped))
		if li >= 0 && p.State() != protocol.PortStatePassive {
			t.Errorf("log %d: not PASSIVE for a better master (%v)", li, p.State())
		}
		last := now
		for now.Sub(last) <= limit+time.Second && p.State() != protocol.PortStateMaster {
			now = now.Add(100 * time.Millisecond)
			p.Tick(now)
		}
		if p.State() != protocol.PortStateMaster {
			t.Errorf("log %d: still %v %v after the last Announce (limit %v)", li, p.State(), now.Sub(last), limit)
		}
		if due := p.NextDue(now); due.Sub(now) > time.Second {
			t.Errorf("log %d: next timer %v away", li, due.Sub(now))
		}
		if li != int8(clamped) && p.Stats.Clamped == 0 {
			t.Errorf("log %d: not counted as clamped", li)
		}
	}
}

// Item 4: sixteen junk masters (worse than us: priority1 250) fill the
// foreign-master table; a real, better master still gets in and makes
// the port PASSIVE. Worse newcomers are dropped and counted.
func TestForeignTableKeepsTheBest(t *testing.T) {
	p := aes67Port()
	now := t0.Add(6 * time.Second)
	p.Tick(now)
	from := netip.MustParseAddrPort("10.0.0.66:320")
	for round := 0; round < 2; round++ {
		for i := 0; i < 40; i++ {
			id := protocol.ClockIdentity(0x7000 + i)
			p.Receive(announceWith(id, 250, 1, id, uint16(round)), now, from, now)
		}
		now = now.Add(time.Second)
	}
	if p.foreign.Len() > maxForeign {
		t.Fatalf("table grew to %d", p.foreign.Len())
	}
	if p.Stats.Drops[DropForeignFull] == 0 {
		t.Error("no newcomer was refused from the full table")
	}
	real := protocol.ClockIdentity(0x1111)
	p.Receive(announceWith(real, 100, 1, real, 1), now, from, now)
	now = now.Add(2 * time.Second)
	p.Receive(announceWith(real, 100, 1, real, 2), now, from, now)
	if p.State() != protocol.PortStatePassive {
		t.Errorf("a better master behind 16 junk masters left the port %v", p.State())
	}
}

// Item 13: an Announce naming our own clock as grandmaster (relayed back
// by a boundary clock, or forged with a better priority) never makes the
// port PASSIVE.
func TestOwnGrandmasterRelayed(t *testing.T) {
	p := aes67Port()
	now := t0.Add(6 * time.Second)
	p.Tick(now)
	from := netip.MustParseAddrPort("10.0.0.5:320")
	for i := 0; i < 5; i++ {
		now = now.Add(2 * time.Second)
		p.Receive(announceWith(0x5555, 0, 1, ours.ClockIdentity, uint16(i)), now, from, now)
		p.Tick(now)
	}
	if p.State() != protocol.PortStateMaster || p.Stats.Drops[DropOwnGM] != 5 {
		t.Errorf("state %v, own-grandmaster drops %d", p.State(), p.Stats.Drops[DropOwnGM])
	}
}

// Item 14: management replies are larger than their requests and go to
// the source the request names: a flood gets MgmtBurst replies at once
// and MgmtRate a second after, the rest dropped and counted.
func TestManagementRateLimited(t *testing.T) {
	p := testPort()
	now := t0.Add(6 * time.Second)
	p.Tick(now)
	victim := netip.MustParseAddrPort("10.0.0.99:320")
	replies, bytesIn, bytesOut := 0, 0, 0
	for i := 0; i < 1000; i++ {
		now = now.Add(time.Millisecond) // 1,000 requests a second for 1 s
		req := mgmtGet(idParentDS, actionGet)
		bytesIn += len(req)
		for _, o := range p.Receive(req, now, victim, now) {
			replies++
			bytesOut += len(o.Data)
		}
	}
	if replies > 32+16+1 {
		t.Errorf("%d replies to 1,000 requests in 1 s", replies)
	}
	if p.Stats.Drops[DropMgmtRate] < 900 {
		t.Errorf("rate drops %d", p.Stats.Drops[DropMgmtRate])
	}
	t.Logf("amplification under flood: %d bytes out for %d in (%.3f)", bytesOut, bytesIn, float64(bytesOut)/float64(bytesIn))
	// pmc's pace (a few requests a second) is always answered.
	now = now.Add(10 * time.Second)
	for i := 0; i < 10; i++ {
		now = now.Add(200 * time.Millisecond)
		if len(p.Receive(mgmtGet(idDefaultDS, actionGet), now, victim, now)) != 1 {
			t.Fatal("a request at pmc's pace was not answered")
		}
	}
}

func TestIntervalSaturates(t *testing.T) {
	for l, want := range map[int8]time.Duration{0: time.Second, 4: 16 * time.Second, -3: time.Second / 8,
		127: time.Second << 24, -128: time.Second >> 24} {
		if got := Interval(l); got != want {
			t.Errorf("Interval(%d) = %v, want %v", l, got, want)
		}
	}
}
