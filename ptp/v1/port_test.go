package v1

import (
	"strings"
	"testing"
	"time"

	"sitegm/ptp"
)

var (
	t0   = time.Date(2026, 11, 24, 12, 0, 37, 0, time.UTC) // TAI
	self = UUID{0x02, 0, 0, 0, 0, 1}
)

func locked() GM {
	return GM{Stratum: 1, Identifier: [4]byte{'G', 'P', 'S', 0}, Variance: -16000, Preferred: true, UTCOffset: 37, UTCReasonable: true}
}

func newPort(t *testing.T, masterOnly bool) *Port {
	p, err := New(Config{Interface: "eth0", Subdomain: "_DFLT", LogSync: -2, MasterOnly: masterOnly, UUID: self}, t0)
	if err != nil {
		t.Fatal(err)
	}
	p.SetGM(locked())
	return p
}

// foreignSyncMsg is a v1 Sync from another master.
func foreignSyncMsg(uuid UUID, stratum uint8, preferred bool, seq uint16) []byte {
	sub, _, _ := ParseSubdomain("_DFLT")
	s := Sync{Header: Header{VersionNetwork: 1, Subdomain: sub, MessageType: EventMessage, SourceTech: 1, SourceUUID: uuid,
		SourcePort: 1, Sequence: seq, Control: CtlSync, Flags: FlagAssist},
		GMTech: 1, GMUUID: uuid, GMPort: 1, GMStratum: stratum, GMIdentifier: [4]byte{'D', 'F', 'L', 'T'},
		GMVariance: -4000, GMPreferred: preferred, SyncInterval: -2}
	b := make([]byte, SyncLen)
	s.MarshalTo(b)
	return b
}

func delayReq(uuid UUID, seq uint16, sub string) []byte {
	sd, _, _ := ParseSubdomain(sub)
	s := Sync{Header: Header{VersionNetwork: 1, Subdomain: sd, MessageType: EventMessage, SourceTech: 1, SourceUUID: uuid,
		SourcePort: 1, Sequence: seq, Control: CtlDelayReq}}
	b := make([]byte, SyncLen)
	s.MarshalTo(b)
	return b
}

// untilMaster ticks through LISTENING (10 Sync intervals).
func untilMaster(t *testing.T, p *Port) (time.Time, []ptp.Out) {
	now := t0
	for i := 0; i < 200; i++ {
		now = now.Add(50 * time.Millisecond)
		if outs := p.Tick(now); p.State() == Master {
			return now, outs
		}
	}
	t.Fatal("never MASTER")
	return now, nil
}

func TestSyncAndFollowUp(t *testing.T) {
	p := newPort(t, false)
	now, outs := untilMaster(t, p)
	if d := now.Sub(t0); d < 2500*time.Millisecond || d > 2600*time.Millisecond {
		t.Errorf("MASTER after %v, want one sync receipt timeout (2.5 s)", d)
	}
	if len(outs) != 1 || !outs[0].Sync || !outs[0].Event {
		t.Fatalf("outs %+v", outs)
	}
	var s Sync
	if err := s.Unmarshal(outs[0].Data); err != nil {
		t.Fatal(err)
	}
	if s.Flags != FlagAssist || s.GMStratum != 1 || !s.GMPreferred || string(s.GMIdentifier[:3]) != "GPS" ||
		s.CurrentUTCOffset != 37 || !s.UTCReasonable || s.SyncInterval != -2 || s.GMUUID != self || s.Subdomain.String() != "_DFLT" {
		t.Errorf("Sync %+v", s)
	}
	tx := now.Add(30 * time.Microsecond)
	fo := p.SyncSent(outs[0].Seq, tx)
	var f FollowUp
	if len(fo) != 1 || fo[0].Event || f.Unmarshal(fo[0].Data) != nil {
		t.Fatalf("Follow_Up %+v", fo)
	}
	if f.AssociatedSequence != s.Sequence || f.Sequence != s.Sequence || !f.Precise.Time(0).Equal(tx) {
		t.Errorf("Follow_Up %+v", f)
	}
	// Four Syncs a second.
	n := 0
	now = now.Add(10 * time.Millisecond)
	for end := now.Add(time.Second); !now.After(end); now = now.Add(10 * time.Millisecond) {
		for _, o := range p.Tick(now) {
			if o.Sync {
				n++
				p.SyncSent(o.Seq, now)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d Syncs in a second, want 4", n)
	}
}

func TestLeapFlags(t *testing.T) {
	p := newPort(t, false)
	g := locked()
	g.Leap61 = true
	p.SetGM(g)
	s := p.SyncMessage(t0, 1)
	if s.Flags != FlagAssist|FlagLI61 {
		t.Errorf("flags %#x", s.Flags)
	}
}

func TestDelayResp(t *testing.T) {
	p := newPort(t, false)
	now, _ := untilMaster(t, p)
	req := UUID{0x0a, 1, 2, 3, 4, 5}
	rx := now.Add(-time.Millisecond)
	outs := p.Receive(delayReq(req, 77, "_DFLT"), rx, now)
	var d DelayResp
	if len(outs) != 1 || outs[0].Event || outs[0].To.IsValid() || d.Unmarshal(outs[0].Data) != nil {
		t.Fatalf("outs %+v", outs)
	}
	if d.ReqUUID != req || d.ReqSequence != 77 || d.ReqPort != 1 || d.ReqTech != 1 || !d.Receipt.Time(0).Equal(rx) {
		t.Errorf("Delay_Resp %+v", d)
	}
	if outs := p.Receive(delayReq(req, 78, "_ALT1"), rx, now); len(outs) != 0 || p.Stats.OtherSubdomain != 1 {
		t.Errorf("answered another subdomain: %+v", outs)
	}
	if outs := p.Receive([]byte{0, 1, 0, 1}, rx, now); len(outs) != 0 || p.Stats.Malformed != 1 {
		t.Error("a short message was not counted")
	}
}

func TestBetterMasterMakesPassive(t *testing.T) {
	p := newPort(t, false)
	now, _ := untilMaster(t, p)
	// A free-running sitegm (not preferred, stratum 4) against a Dante
	// device set as preferred leader.
	p.SetGM(GM{Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF})
	other := UUID{0x00, 0x1d, 0xc1, 1, 2, 3}
	for i := 0; i < 2; i++ {
		now = now.Add(250 * time.Millisecond)
		p.Receive(foreignSyncMsg(other, 4, true, uint16(i)), now, now)
	}
	if p.State() != Passive {
		t.Fatalf("state %v", p.State())
	}
	ev := p.Events()
	found := false
	for _, e := range ev {
		found = found || (e.Name == "ptpv1_port_state" && strings.Contains(e.Msg, "00:1d:c1:01:02:03"))
	}
	if !found {
		t.Errorf("no PASSIVE event naming the master: %+v", ev)
	}
	if outs := p.Receive(delayReq(UUID{9}, 1, "_DFLT"), now, now); len(outs) != 0 {
		t.Error("PASSIVE answered a Delay_Req")
	}
	for end := now.Add(2 * time.Second); now.Before(end); now = now.Add(50 * time.Millisecond) {
		for _, o := range p.Tick(now) {
			if o.Sync {
				t.Fatal("PASSIVE sent a Sync")
			}
		}
	}
	// Silence for the receipt timeout: MASTER again.
	for end := now.Add(2 * time.Second); now.Before(end) && p.State() != Master; now = now.Add(50 * time.Millisecond) {
		p.Tick(now)
	}
	if p.State() != Master {
		t.Errorf("state %v after the master went silent", p.State())
	}
}

func TestLockedBeatsDantePreferredLeader(t *testing.T) {
	p := newPort(t, false)
	now, _ := untilMaster(t, p)
	for i := 0; i < 3; i++ {
		now = now.Add(250 * time.Millisecond)
		p.Receive(foreignSyncMsg(UUID{0, 0x1d, 0xc1, 9, 9, 9}, 4, true, uint16(i)), now, now)
	}
	if p.State() != Master {
		t.Errorf("a locked sitegm yielded to a preferred Dante leader: %v", p.State())
	}
}

func TestMasterOnlyAlarms(t *testing.T) {
	p := newPort(t, true)
	now, _ := untilMaster(t, p)
	p.SetGM(GM{Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF})
	for i := 0; i < 2; i++ {
		now = now.Add(250 * time.Millisecond)
		p.Receive(foreignSyncMsg(UUID{0, 1, 2, 3, 4, 5}, 1, true, uint16(i)), now, now)
	}
	if p.State() != Master {
		t.Errorf("state %v", p.State())
	}
	alarm := false
	for _, e := range p.Events() {
		alarm = alarm || e.Name == "ptpv1_master_conflict"
	}
	if !alarm {
		t.Error("no alarm")
	}
}

func TestOneSyncDoesNotQualify(t *testing.T) {
	p := newPort(t, false)
	now, _ := untilMaster(t, p)
	p.Receive(foreignSyncMsg(UUID{0, 1, 2, 3, 4, 5}, 0, true, 1), now, now)
	if p.State() != Master {
		t.Error("one Sync made the port PASSIVE")
	}
}

func TestCompare(t *testing.T) {
	gps := [4]byte{'G', 'P', 'S', 0}
	dflt := [4]byte{'D', 'F', 'L', 'T'}
	base := Credentials{UUID: UUID{5}, Port: 1, Stratum: 4, Identifier: dflt, Variance: 0}
	with := func(f func(*Credentials)) Credentials { c := base; c.UUID = UUID{6}; f(&c); return c }
	for _, c := range []struct {
		name string
		b    Credentials // better than base
	}{
		{"preferred over stratum", with(func(c *Credentials) { c.Preferred = true; c.Stratum = 9 })},
		{"lower stratum", with(func(c *Credentials) { c.Stratum = 3 })},
		{"identifier", with(func(c *Credentials) { c.Identifier = gps })},
		{"variance beyond the threshold", with(func(c *Credentials) { c.Variance = -300 })},
		{"boundary clock when variance is similar", with(func(c *Credentials) { c.Variance = -100; c.IsBoundary = true })},
		{"lower UUID", func() Credentials { c := base; c.UUID = UUID{4}; return c }()},
	} {
		if Compare(c.b, base) >= 0 || Compare(base, c.b) <= 0 {
			t.Errorf("%s: not better", c.name)
		}
	}
	similar := with(func(c *Credentials) { c.Variance = -100 }) // within 256, higher UUID
	if Compare(similar, base) <= 0 {
		t.Error("a similar variance decided")
	}
}
