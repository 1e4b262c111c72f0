package ptp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

var (
	t0   = time.Date(2026, 11, 24, 12, 0, 37, 0, time.UTC) // TAI
	ours = protocol.PortIdentity{ClockIdentity: 0x001b21fffe010203, PortNumber: 1}
)

func testPort(mut ...func(*Config)) *Port {
	c := Config{Interface: "veth0", Profile: "aes67", Domain: 0, Priority1: 128, Priority2: 128,
		LogAnnounce: 1, LogSync: -3, LogMinDelayReq: -3, ReceiptTimeout: 3, Identity: ours, GeneralPort: 320}
	for _, m := range mut {
		m(&c)
	}
	p := New(c, t0)
	p.SetGM(GM{Quality: protocol.ClockQuality{ClockClass: 6, ClockAccuracy: 0x21, OffsetScaledLogVariance: 0x4e5d},
		TimeSource: 0x20, UTCOffset: 37, Flags: protocol.FlagPTPTimescale | protocol.FlagCurrentUtcOffsetValid | protocol.FlagTimeTraceable | protocol.FlagFrequencyTraceable})
	return p
}

func delayReq(seq uint16, unicast bool) []byte {
	r := protocol.SyncDelayReq{Header: protocol.Header{
		SdoIDAndMsgType: protocol.NewSdoIDAndMsgType(protocol.MessageDelayReq, 0), Version: 2, MessageLength: 44,
		SourcePortIdentity: protocol.PortIdentity{ClockIdentity: 0xaabbccfffeddeeff, PortNumber: 1},
		SequenceID:         seq, ControlField: 1, LogMessageInterval: 0x7f, CorrectionField: protocol.NewCorrection(12.5),
	}}
	if unicast {
		r.FlagField = protocol.FlagUnicast
	}
	b, _ := r.MarshalBinary()
	return b
}

func TestDelayRespGolden(t *testing.T) {
	rx := time.Unix(1795550817, 123456789)
	out := make([]byte, 64)
	n, ok := AppendDelayResp(out, delayReq(0x1234, true), rx, ours, -3)
	if !ok || n != 54 {
		t.Fatal(n, ok)
	}
	want := []byte{
		0x09, 0x02, 0x00, 0x36, 0x00, 0x00, 0x04, 0x00, // type 9, v2, len 54, domain 0, unicast flag
		0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x80, 0x00, // correction 12.5 ns (scaled by 2^16)
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x1b, 0x21, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x00, 0x01, // our port identity
		0x12, 0x34, 0x03, 0xfd, // sequence, control 3, logMinDelayReqInterval -3
		0x00, 0x00, 0x6b, 0x05, 0xee, 0x61, 0x07, 0x5b, 0xcd, 0x15, // receiveTimestamp 1795550817.123456789
		0xaa, 0xbb, 0xcc, 0xff, 0xfe, 0xdd, 0xee, 0xff, 0x00, 0x01, // requestingPortIdentity
	}
	if !bytes.Equal(out[:n], want) {
		t.Errorf("Delay_Resp\n got % x\nwant % x", out[:n], want)
	}
	var dr protocol.DelayResp
	if err := dr.UnmarshalBinary(out[:n]); err != nil || !dr.ReceiveTimestamp.Time().Equal(rx) || dr.SequenceID != 0x1234 {
		t.Errorf("does not decode back: %v %+v", err, dr)
	}
	if allocs := testing.AllocsPerRun(100, func() { AppendDelayResp(out, delayReq(1, false), rx, ours, -3) }); allocs > 1 {
		// delayReq itself allocates once; AppendDelayResp must not.
		t.Errorf("%v allocations per Delay_Resp", allocs)
	}
}

func TestListeningThenMasterCycle(t *testing.T) {
	p := testPort()
	if outs := p.Tick(t0); len(outs) != 0 || p.State() != protocol.PortStateListening {
		t.Fatalf("sent while listening: %d, %v", len(outs), p.State())
	}
	now := t0.Add(6 * time.Second) // 3 announce intervals of 2 s
	outs := p.Tick(now)
	if p.State() != protocol.PortStateMaster || len(outs) != 1 {
		t.Fatalf("state %v, %d messages", p.State(), len(outs))
	}
	var a protocol.Announce
	if err := a.UnmarshalBinary(outs[0].Data); err != nil || a.GrandmasterClockQuality.ClockClass != 6 ||
		a.CurrentUTCOffset != 37 || a.GrandmasterIdentity != ours.ClockIdentity || a.LogMessageInterval != 1 ||
		a.FlagField&protocol.FlagPTPTimescale == 0 || a.TimeSource != 0x20 {
		t.Errorf("announce %+v %v", a, err)
	}
	// Syncs run half an interval off the Announces: never back to back
	// (a Sync sent right behind an Announce reached ptp4l ~20 µs late on
	// a busy veth).
	now = now.Add(62500 * time.Microsecond)
	outs = p.Tick(now)
	if len(outs) != 1 {
		t.Fatalf("%d messages half a sync interval later", len(outs))
	}
	sync := outs[0]
	if !sync.Event || !sync.Sync || sync.Seq != 0 || sync.Data[6]&byte(protocol.FlagTwoStep>>8) == 0 {
		t.Fatalf("sync %+v", sync)
	}
	fu := p.SyncSent(0, now.Add(12345))
	var f protocol.FollowUp
	if len(fu) != 1 || f.UnmarshalBinary(fu[0].Data) != nil || !f.PreciseOriginTimestamp.Time().Equal(now.Add(12345)) || f.SequenceID != 0 {
		t.Fatalf("follow up %+v", f)
	}
	// Eight Syncs a second, an Announce every two.
	syncs, anns := 0, 0
	for i := 1; i <= 16; i++ {
		for _, o := range p.Tick(now.Add(time.Duration(i) * 125 * time.Millisecond)) {
			if o.Sync {
				syncs++
				p.SyncSent(o.Seq, now)
			} else {
				anns++
			}
		}
	}
	if syncs != 16 || anns != 1 {
		t.Errorf("2 s: %d syncs, %d announces", syncs, anns)
	}
	// Delay_Req: multicast request, multicast reply; unicast (hybrid),
	// unicast reply.
	from := netip.MustParseAddrPort("10.0.0.2:319")
	outs = p.Receive(delayReq(7, false), now, from, now)
	if len(outs) != 1 || outs[0].To.IsValid() || outs[0].Event {
		t.Errorf("multicast Delay_Resp %+v", outs)
	}
	outs = p.Receive(delayReq(8, true), now, from, now)
	if len(outs) != 1 || outs[0].To != netip.MustParseAddrPort("10.0.0.2:320") {
		t.Errorf("unicast Delay_Resp %+v", outs)
	}
}

func announceFrom(id protocol.ClockIdentity, prio1, prio2, class uint8, seq uint16) []byte {
	a := protocol.Announce{Header: protocol.Header{
		SdoIDAndMsgType: protocol.NewSdoIDAndMsgType(protocol.MessageAnnounce, 0), Version: 2, MessageLength: 64,
		SourcePortIdentity: protocol.PortIdentity{ClockIdentity: id, PortNumber: 1}, SequenceID: seq, ControlField: 5, LogMessageInterval: 1,
	}, AnnounceBody: protocol.AnnounceBody{GrandmasterPriority1: prio1, GrandmasterPriority2: prio2, GrandmasterIdentity: id,
		GrandmasterClockQuality: protocol.ClockQuality{ClockClass: protocol.ClockClass(class), ClockAccuracy: 0x21, OffsetScaledLogVariance: 0x4e5d}}}
	b, _ := a.MarshalBinary()
	return b
}

func TestPassiveWhileBetterMasterThenBack(t *testing.T) {
	p := testPort()
	now := t0.Add(6 * time.Second)
	p.Tick(now)
	better := protocol.ClockIdentity(0x1111)
	from := netip.MustParseAddrPort("10.0.0.3:320")
	// One Announce is not enough to qualify; the second is.
	p.Receive(announceFrom(better, 100, 128, 6, 1), now, from, now)
	if p.State() != protocol.PortStateMaster {
		t.Fatal("passive after one announce")
	}
	now = now.Add(2 * time.Second)
	p.Receive(announceFrom(better, 100, 128, 6, 2), now, from, now)
	if p.State() != protocol.PortStatePassive {
		t.Fatalf("state %v with a better priority1 master", p.State())
	}
	evs := p.Events()
	if len(evs) == 0 || evs[len(evs)-1].Name != "ptp_port_state" {
		t.Errorf("events %+v", evs)
	}
	// No Sync, no Announce, no Delay_Resp while passive: only the
	// watch's Delay_Req to the master (watchmaster.go).
	for _, o := range p.Tick(now.Add(time.Second)) {
		if !o.DelayReq || protocol.MessageType(o.Data[0]&0x0f) != protocol.MessageDelayReq {
			t.Errorf("sent % x while passive", o.Data)
		}
	}
	if outs := p.Receive(delayReq(1, false), now, from, now); len(outs) != 0 {
		t.Error("answered Delay_Req while passive")
	}
	// The master goes silent: after 3 announce intervals (6 s) MASTER.
	if p.Tick(now.Add(5900 * time.Millisecond)); p.State() != protocol.PortStatePassive {
		t.Error("gave up on the master too early")
	}
	if outs := p.Tick(now.Add(6100 * time.Millisecond)); p.State() != protocol.PortStateMaster || len(outs) == 0 {
		t.Errorf("not master again after the receipt timeout: %v", p.State())
	}
	// A worse master (priority1 200) does not make us passive.
	for i := 0; i < 3; i++ {
		now = now.Add(2 * time.Second)
		p.Receive(announceFrom(0x2222, 200, 128, 6, uint16(i)), now, from, now)
	}
	if p.State() != protocol.PortStateMaster {
		t.Error("passive for a worse master")
	}
}

func TestMasterOnlyAlarms(t *testing.T) {
	p := testPort(func(c *Config) { c.MasterOnly = true })
	now := t0.Add(6 * time.Second)
	p.Tick(now)
	from := netip.MustParseAddrPort("10.0.0.3:320")
	for i := 0; i < 3; i++ {
		now = now.Add(2 * time.Second)
		p.Receive(announceFrom(0x1111, 1, 1, 6, uint16(i)), now, from, now)
	}
	if p.State() != protocol.PortStateMaster {
		t.Fatal("master_only went passive")
	}
	found := false
	for _, e := range p.Events() {
		found = found || e.Name == "ptp_master_conflict"
	}
	if !found {
		t.Error("no conflict alarm")
	}
}

func TestBackupWithWorsePriority2StaysPassive(t *testing.T) {
	// Two sitegm boxes, same quality, priority2 127 (primary) and 128
	// (backup, this port).
	p := testPort()
	now := t0
	from := netip.MustParseAddrPort("10.0.0.4:320")
	for i := 0; i < 3; i++ {
		p.Receive(announceFrom(0x3333, 128, 127, 6, uint16(i)), now, from, now)
		now = now.Add(2 * time.Second)
		p.Tick(now)
	}
	if p.State() != protocol.PortStatePassive {
		t.Fatalf("backup state %v, want PASSIVE", p.State())
	}
}

func TestCompare(t *testing.T) {
	a := Dataset{Priority1: 128, Quality: protocol.ClockQuality{ClockClass: 6, ClockAccuracy: 0x21, OffsetScaledLogVariance: 100}, Priority2: 128, GMIdentity: 5}
	b := a
	b.GMIdentity = 6
	if Compare(a, b) >= 0 || Compare(b, a) <= 0 {
		t.Error("identity tie-break")
	}
	for _, mut := range []func(*Dataset){
		func(d *Dataset) { d.Priority1 = 127 },
		func(d *Dataset) { d.Quality.ClockClass = 5 },
		func(d *Dataset) { d.Quality.ClockAccuracy = 0x20 },
		func(d *Dataset) { d.Quality.OffsetScaledLogVariance = 99 },
		func(d *Dataset) { d.Priority2 = 127 },
	} {
		c := b
		mut(&c)
		if Compare(c, a) >= 0 {
			t.Errorf("better %+v not preferred", c)
		}
	}
	// Priority1 outranks class: a 248 with priority1 1 beats a 6 with 128.
	c := b
	c.Priority1, c.Quality.ClockClass = 1, 248
	if Compare(c, a) >= 0 {
		t.Error("priority1 does not outrank clockClass")
	}
}

func mgmtGet(id uint16, action byte) []byte {
	b := make([]byte, 54)
	b[0], b[1] = byte(protocol.MessageManagement), 2
	binary.BigEndian.PutUint16(b[2:], 54)
	binary.BigEndian.PutUint64(b[20:], 0x0102030405060708) // pmc's identity
	binary.BigEndian.PutUint16(b[28:], 0x1234)
	binary.BigEndian.PutUint16(b[30:], 77)
	b[32] = 4
	b[33] = 0x7f
	for i := 34; i < 44; i++ {
		b[i] = 0xff // any clock
	}
	b[44], b[45] = 1, 1
	b[46] = action
	binary.BigEndian.PutUint16(b[48:], tlvManagement)
	binary.BigEndian.PutUint16(b[50:], 2)
	binary.BigEndian.PutUint16(b[52:], id)
	return b
}

func TestManagement(t *testing.T) {
	p := testPort()
	p.Tick(t0.Add(6 * time.Second))
	from := netip.MustParseAddrPort("10.0.0.9:320")
	for id, dataLen := range map[uint16]int{idDefaultDS: 20, idCurrentDS: 18, idParentDS: 32, idTimePropsDS: 4, idPortDS: 26, idNull: 0} {
		outs := p.Receive(mgmtGet(id, actionGet), t0, from, t0)
		if len(outs) != 1 || outs[0].To != from {
			t.Fatalf("id %#x: %+v", id, outs)
		}
		r := outs[0].Data
		if r[46] != actionResponse || binary.BigEndian.Uint16(r[48:]) != tlvManagement ||
			int(binary.BigEndian.Uint16(r[50:])) != 2+dataLen || binary.BigEndian.Uint16(r[52:]) != id ||
			len(r) != 54+dataLen || int(binary.BigEndian.Uint16(r[2:])) != len(r) ||
			binary.BigEndian.Uint16(r[30:]) != 77 || binary.BigEndian.Uint64(r[34:]) != 0x0102030405060708 {
			t.Errorf("id %#x: reply % x", id, r)
		}
		switch id {
		case idDefaultDS:
			if r[54+5] != 6 || r[54+4] != 128 || binary.BigEndian.Uint64(r[54+10:]) != uint64(ours.ClockIdentity) {
				t.Errorf("DEFAULT_DATA_SET % x", r[54:])
			}
		case idTimePropsDS:
			if binary.BigEndian.Uint16(r[54:]) != 37 || r[56] != 0x3c || r[57] != 0x20 {
				t.Errorf("TIME_PROPERTIES_DATA_SET % x", r[54:])
			}
		case idPortDS:
			if r[54+10] != byte(protocol.PortStateMaster) {
				t.Errorf("PORT_DATA_SET state %d", r[54+10])
			}
		}
	}
	outs := p.Receive(mgmtGet(idDefaultDS, actionSet), t0, from, t0)
	if len(outs) != 1 || binary.BigEndian.Uint16(outs[0].Data[48:]) != tlvMgmtError ||
		binary.BigEndian.Uint16(outs[0].Data[52:]) != errNotSetable {
		t.Errorf("SET not refused: %+v", outs)
	}
	outs = p.Receive(mgmtGet(0x2010, actionGet), t0, from, t0) // CLOCK_ACCURACY: not served
	if len(outs) != 1 || binary.BigEndian.Uint16(outs[0].Data[52:]) != errNotSupport {
		t.Errorf("unknown GET: %+v", outs)
	}
}

// FuzzReceive: any datagram is counted or answered, never a panic, and a
// reply is always a well-formed PTPv2 message.
func FuzzReceive(f *testing.F) {
	f.Add(delayReq(1, true))
	f.Add(announceFrom(0x1111, 100, 128, 6, 1))
	f.Add(mgmtGet(idDefaultDS, actionGet))
	f.Add(mgmtGet(idPortDS, actionSet))
	f.Add([]byte{0x0b, 0x02, 0x00, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := testPort()
		now := t0.Add(6 * time.Second)
		p.Tick(now)
		from := netip.MustParseAddrPort("10.0.0.2:320")
		for _, o := range p.Receive(b, now, from, now) {
			if len(o.Data) < headerLen || o.Data[1]&0x0f != 2 || int(binary.BigEndian.Uint16(o.Data[2:])) != len(o.Data) {
				t.Fatalf("malformed reply % x", o.Data)
			}
		}
		p.Tick(now.Add(time.Second))
	})
}

// TestCompareLockedFirst: a locked grandmaster beats one that is not,
// whatever priority1 says; between two of the same kind the standard
// order holds (priority1 first).
func TestCompareLockedFirst(t *testing.T) {
	locked := Dataset{Priority1: 110, Quality: protocol.ClockQuality{ClockClass: 6, ClockAccuracy: 0x21, OffsetScaledLogVariance: 100}, Priority2: 128, GMIdentity: 5}
	for _, class := range []protocol.ClockClass{7, 52, 187, 248, 255} {
		other := locked
		other.GMIdentity, other.Priority1, other.Quality.ClockClass = 6, 100, class
		if CompareLockedFirst(locked, other) >= 0 || CompareLockedFirst(other, locked) <= 0 {
			t.Errorf("class %d with priority1 100 beats a locked class 6 with 110", class)
		}
		if Compare(other, locked) >= 0 {
			t.Errorf("the standard order changed: class %d", class)
		}
	}
	both := locked
	both.GMIdentity, both.Priority1 = 6, 100
	if CompareLockedFirst(both, locked) >= 0 {
		t.Error("between two locked grandmasters priority1 no longer decides")
	}
	arb := locked
	arb.Quality.ClockClass = 13
	if !Locked(arb.Quality.ClockClass) || Locked(7) || Locked(14) {
		t.Error("Locked: 6 and 13 are, holdover is not")
	}
}

// TestLockedFirstPair runs a redundant pair's hand-overs on one port: a
// primary (priority1 100, this port) and a locked backup (priority1 110).
// Returning unlocked, the primary stays PASSIVE until its own clock
// locks; locked, it takes over (priority1); in holdover it yields again;
// without locked_first it takes the network while unlocked, as 1588's
// order says.
func TestLockedFirstPair(t *testing.T) {
	from := netip.MustParseAddrPort("10.0.0.2:320")
	backup := protocol.ClockIdentity(0x2222)
	quality := func(class protocol.ClockClass) protocol.ClockQuality {
		if class == 6 {
			return protocol.ClockQuality{ClockClass: 6, ClockAccuracy: 0x21, OffsetScaledLogVariance: 0x4e5d}
		}
		return protocol.ClockQuality{ClockClass: class, ClockAccuracy: 0xFE, OffsetScaledLogVariance: 0xFFFF}
	}
	for _, lf := range []bool{true, false} {
		p := testPort(func(c *Config) { c.Priority1, c.LockedFirst = 100, lf })
		p.SetGM(GM{Quality: quality(248), TimeSource: 0xA0})
		now := t0
		seq := uint16(0)
		// The backup announces every 2 s throughout.
		run := func(d time.Duration) {
			for end := now.Add(d); now.Before(end); now = now.Add(time.Second) {
				if now.Sub(t0)%(2*time.Second) == 0 {
					seq++
					p.Receive(announceFrom(backup, 110, 128, 6, seq), now, from, now)
				}
				p.Tick(now)
			}
		}
		run(10 * time.Second)
		want := map[bool]protocol.PortState{true: protocol.PortStatePassive, false: protocol.PortStateMaster}[lf]
		if p.State() != want {
			t.Fatalf("locked_first %v: returning unlocked (class 248), state %v, want %v", lf, p.State(), want)
		}
		if !lf {
			continue
		}
		evs := p.Events()
		if len(evs) == 0 || !bytes.Contains([]byte(evs[len(evs)-1].Msg), []byte("locked_first")) {
			t.Errorf("PASSIVE without saying why: %+v", evs)
		}
		p.SetGM(GM{Quality: quality(6), TimeSource: 0x20})
		run(2 * time.Second)
		if p.State() != protocol.PortStateMaster {
			t.Fatalf("locked, the primary is %v, want MASTER (priority1 100 over 110)", p.State())
		}
		if evs := p.Events(); len(evs) == 0 || !bytes.Contains([]byte(evs[len(evs)-1].Msg), []byte("this clock is locked")) {
			t.Errorf("MASTER again without saying why: %+v", evs)
		}
		// Antenna cut: holdover (7) yields to the locked backup.
		p.SetGM(GM{Quality: quality(7), TimeSource: 0x20})
		run(2 * time.Second)
		if p.State() != protocol.PortStatePassive {
			t.Fatalf("in holdover the primary is %v, want PASSIVE to the locked backup", p.State())
		}
	}
}

// TestLockedBackupAnswersHoldover: the backup's side of an antenna cut.
// Locked (class 6, priority1 110), it is PASSIVE to a locked primary
// (100); when the primary's Announces say holdover (7), it goes MASTER,
// so that the primary hears a locked master and yields.
func TestLockedBackupAnswersHoldover(t *testing.T) {
	p := testPort(func(c *Config) { c.Priority1, c.LockedFirst = 110, true })
	from := netip.MustParseAddrPort("10.0.0.1:320")
	now := t0
	for i := 0; i < 8; i++ {
		class := protocol.ClockClass(6)
		if i >= 4 {
			class = 7
		}
		p.Receive(announceFrom(0x1111, 100, 128, uint8(class), uint16(i)), now, from, now)
		now = now.Add(2 * time.Second)
		p.Tick(now)
		if want := map[bool]protocol.PortState{true: protocol.PortStatePassive, false: protocol.PortStateMaster}[class == 6]; i >= 3 && p.State() != want { // after LISTENING
			t.Fatalf("announce %d (primary class %d): backup %v, want %v", i, class, p.State(), want)
		}
	}
}

// TestPassiveWatchesItsMaster: a PASSIVE port measures the master it
// yields to by delay request-response: with the master 30 us ahead and a
// 10 us path each way, offset -30 us (this clock minus the master's) and
// delay 10 us, more than both accuracies (1 us and 100 ns) and the path
// together: a ptp_master_offset WARNING; 2 us ahead is within them.
func TestPassiveWatchesItsMaster(t *testing.T) {
	for _, c := range []struct {
		ahead time.Duration
		off   bool
	}{{30 * time.Microsecond, true}, {2 * time.Microsecond, false}, {5 * time.Millisecond, true}} {
		p := testPort()
		p.SetGM(GM{Quality: protocol.ClockQuality{ClockClass: 6, ClockAccuracy: 0x23, OffsetScaledLogVariance: 0x4e5d}, TimeSource: 0x20})
		master := protocol.ClockIdentity(0x1111)
		from := netip.MustParseAddrPort("10.0.0.1:320")
		now := t0
		path := 10 * time.Microsecond
		for i := 0; i < 4; i++ {
			p.Receive(announceFrom(master, 100, 128, 6, uint16(i)), now, from, now)
			now = now.Add(2 * time.Second)
			p.Tick(now)
		}
		if p.State() != protocol.PortStatePassive {
			t.Fatalf("state %v", p.State())
		}
		for i := 0; i < 6; i++ {
			now = now.Add(time.Second)
			p.Receive(announceFrom(master, 100, 128, 6, uint16(10+i)), now, from, now)
			// The master's Sync left at its t1 (our now + ahead) and
			// arrived path later on our clock.
			t1 := now.Add(c.ahead)
			p.Receive(masterMsg(master, protocol.MessageSync, uint16(100+i), time.Time{}, nil), now.Add(path), from, now)
			p.Receive(masterMsg(master, protocol.MessageFollowUp, uint16(100+i), t1, nil), time.Time{}, from, now)
			var req *Out
			for _, o := range p.Tick(now.Add(path)) {
				if o.DelayReq {
					req = &o
				}
			}
			if req == nil {
				t.Fatalf("no Delay_Req to the master: %v", p.State())
			}
			t3 := now.Add(2 * path)
			p.SyncSent(req.Seq, t3)
			t4 := t3.Add(path).Add(c.ahead)
			p.Receive(masterMsg(master, protocol.MessageDelayResp, req.Seq, t4, &ours), time.Time{}, from, now)
		}
		w, ok := p.Watch()
		if !ok || w.OffsetNS != int64(-c.ahead) || w.DelayNS != int64(path) || w.Samples != 6 {
			t.Fatalf("master %v ahead: watch %+v %v", c.ahead, w, ok)
		}
		// The limit: 1 us (ours, 0x23) + 100 ns (the master's, 0x21) +
		// the 10 us path.
		if want := c.ahead > 11100*time.Nanosecond; w.Off != want || w.LimitNS != 11100 {
			t.Errorf("master %v ahead: off %v (limit %d ns), want %v", c.ahead, w.Off, w.LimitNS, want)
		}
		warned := false
		for _, e := range p.Events() {
			warned = warned || e.Name == "ptp_master_offset"
		}
		if warned != w.Off {
			t.Errorf("master %v ahead: ptp_master_offset event %v, off %v", c.ahead, warned, w.Off)
		}
	}
}

// masterMsg builds a master's two-step Sync, Follow_Up (ts the precise
// origin) or Delay_Resp (ts the receive time, to the requester).
func masterMsg(id protocol.ClockIdentity, t protocol.MessageType, seq uint16, ts time.Time, req *protocol.PortIdentity) []byte {
	n := map[protocol.MessageType]int{protocol.MessageSync: syncLen, protocol.MessageFollowUp: followUpLen, protocol.MessageDelayResp: delayRespLen}[t]
	b := make([]byte, n)
	b[0], b[1] = byte(t), 2
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	if t == protocol.MessageSync {
		b[6] = byte(protocol.FlagTwoStep >> 8)
	}
	binary.BigEndian.PutUint64(b[20:], uint64(id))
	binary.BigEndian.PutUint16(b[28:], 1)
	binary.BigEndian.PutUint16(b[30:], seq)
	if !ts.IsZero() {
		putTimestamp(b[34:44], ts)
	}
	if req != nil {
		binary.BigEndian.PutUint64(b[44:], uint64(req.ClockIdentity))
		binary.BigEndian.PutUint16(b[52:], req.PortNumber)
	}
	return b
}

// TestLockedFirstWarnsOfAnUnlockedRival: a locked port stays MASTER over
// an unlocked master with a better priority1 (locked_first), and says
// once a minute that followers may take that master anyway, from a
// receipt timeout on (a pair's primary in holdover yields before that).
func TestLockedFirstWarnsOfAnUnlockedRival(t *testing.T) {
	p := testPort(func(c *Config) { c.LockedFirst = true })
	from := netip.MustParseAddrPort("10.0.0.9:320")
	now := t0
	warnings := 0
	for i := 0; i < 40; i++ {
		p.Receive(announceFrom(0x9999, 1, 128, 248, uint16(i)), now, from, now)
		now = now.Add(2 * time.Second)
		p.Tick(now)
		if i >= 3 && p.State() != protocol.PortStateMaster {
			t.Fatalf("a locked port yielded to an unlocked priority1 1: %v", p.State())
		}
		for _, e := range p.Events() {
			if e.Name == "ptp_master_conflict" {
				warnings++
				// MASTER after LISTENING (6 s), the rival heard from
				// then: not before a receipt timeout (6 s) more.
				if now.Sub(t0) < 12*time.Second {
					t.Errorf("warned %v after the start, before the rival had a receipt timeout to yield", now.Sub(t0))
				}
			}
		}
	}
	// 80 s: at most one a minute.
	if warnings < 1 || warnings > 2 {
		t.Errorf("%d ptp_master_conflict warnings in 80 s", warnings)
	}
}

// FuzzWatchReceive: a PASSIVE port watching its master takes any datagram
// that claims to come from that master (Sync, Follow_Up, Delay_Resp or
// junk with the master's identity) without a panic, answers none of
// them, and keeps sending nothing but its Delay_Reqs.
func FuzzWatchReceive(f *testing.F) {
	master := protocol.ClockIdentity(0x1111)
	f.Add(masterMsg(master, protocol.MessageSync, 7, time.Time{}, nil))
	f.Add(masterMsg(master, protocol.MessageFollowUp, 7, t0, nil))
	f.Add(masterMsg(master, protocol.MessageDelayResp, 1, t0, &ours))
	f.Add([]byte{0x08, 0x02, 0x00, 0x2c})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := testPort()
		from := netip.MustParseAddrPort("10.0.0.1:320")
		now := t0
		for i := 0; i < 4; i++ {
			p.Receive(announceFrom(master, 100, 128, 6, uint16(i)), now, from, now)
			now = now.Add(2 * time.Second)
			p.Tick(now)
		}
		p.SyncSent(p.watch.dreqSeq, now) // the pending Delay_Req's stamp
		if len(b) >= 30 {
			// Past the identity check, into the parsing.
			b = append([]byte(nil), b...)
			binary.BigEndian.PutUint64(b[20:], uint64(master))
			binary.BigEndian.PutUint16(b[28:], 1)
		}
		watched := len(b) > 0 && (b[0]&0x0f == byte(protocol.MessageSync) || b[0]&0x0f == byte(protocol.MessageFollowUp) ||
			b[0]&0x0f == byte(protocol.MessageDelayResp))
		for k := 0; k < 3; k++ {
			for _, o := range p.Receive(b, now, from, now) {
				if watched {
					t.Fatalf("answered the master's message: % x", o.Data)
				}
			}
			now = now.Add(100 * time.Millisecond)
		}
		// An Announce of the master's may make it worse, and the port
		// MASTER: only a port still PASSIVE is held to Delay_Reqs.
		for _, o := range p.Tick(now.Add(time.Second)) {
			if p.State() == protocol.PortStatePassive && !o.DelayReq {
				t.Fatalf("sent % x while PASSIVE", o.Data)
			}
		}
		p.Watch()
	})
}
