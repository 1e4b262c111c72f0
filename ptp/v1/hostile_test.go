package v1

import (
	"testing"
	"time"
)

// syncWithInterval is a foreign v1 Sync of a better master announcing
// its Sync interval as 2^li s.
func syncWithInterval(uuid UUID, li int8, seq uint16) []byte {
	sub, _, _ := ParseSubdomain("_DFLT")
	s := Sync{Header: Header{VersionNetwork: 1, Subdomain: sub, MessageType: EventMessage, SourceTech: 1, SourceUUID: uuid,
		SourcePort: 1, Sequence: seq, Control: CtlSync, Flags: FlagAssist},
		GMTech: 1, GMUUID: uuid, GMPort: 1, GMStratum: 0, GMIdentifier: [4]byte{'A', 'T', 'O', 'M'},
		GMVariance: -4000, GMPreferred: true, SyncInterval: li}
	b := make([]byte, SyncLen)
	s.MarshalTo(b)
	return b
}

// Item 3 (v1): a Sync claiming syncInterval 2^6 (or 2^127) made the port
// PASSIVE for ten of those intervals (640 s). Clamped, the port is
// MASTER again within ten clamped intervals (at most 2 s each) of the
// last Sync.
func TestForeignSyncIntervalClamped(t *testing.T) {
	for _, li := range []int8{6, 127, -128, -2} {
		p := newPort(t, false)
		now, _ := untilMaster(t, p)
		other := UUID{0, 0x1d, 0xc1, 6, 6, 6}
		p.Receive(syncWithInterval(other, li, 1), now, now)
		now = now.Add(100 * time.Millisecond)
		p.Receive(syncWithInterval(other, li, 2), now, now)
		if p.State() != Passive {
			t.Errorf("log %d: not PASSIVE for a stratum 0 master (%v)", li, p.State())
		}
		c := max(foreignIntervalRange[0], min(li, foreignIntervalRange[1]))
		limit := syncReceiptTimeout * interval(c)
		last := now
		for now.Sub(last) <= limit+time.Second && p.State() != Master {
			now = now.Add(50 * time.Millisecond)
			p.Tick(now)
		}
		if p.State() != Master || now.Sub(last) > limit+100*time.Millisecond {
			t.Errorf("log %d: %v %v after the last Sync (limit %v)", li, p.State(), now.Sub(last), limit)
		}
		if (c != li) != (p.Stats.Clamped > 0) {
			t.Errorf("log %d: clamped count %d", li, p.Stats.Clamped)
		}
	}
}

// Item 4 (v1): sixteen junk masters (stratum 4, not preferred: worse
// than a locked sitegm) fill the table; a better master (stratum 0)
// still gets in.
func TestForeignTableKeepsTheBestV1(t *testing.T) {
	p := newPort(t, false)
	now, _ := untilMaster(t, p)
	for round := 0; round < 2; round++ {
		for i := 0; i < 40; i++ {
			p.Receive(foreignSyncMsg(UUID{0, 9, 9, 9, 0, byte(i)}, 4, false, uint16(round)), now, now)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if p.foreign.Len() > maxForeign || p.Stats.ForeignFull == 0 || p.State() != Master {
		t.Fatalf("table %d entries, %d refused, %v", p.foreign.Len(), p.Stats.ForeignFull, p.State())
	}
	real := UUID{0, 0x1d, 0xc1, 1, 1, 1}
	for i := 0; i < 2; i++ {
		p.Receive(syncWithInterval(real, -2, uint16(i)), now, now)
		now = now.Add(250 * time.Millisecond)
	}
	if p.State() != Passive {
		t.Errorf("a stratum 0 master behind junk left the port %v", p.State())
	}
}

// NextDue is never in the past and never zero: the port goroutine sleeps
// until it (a foreign-master table with nothing in it once made it the
// zero time, and the goroutine spun without ever letting the port become
// MASTER). With a foreign master, its expiry counts.
func TestNextDue(t *testing.T) {
	p := newPort(t, false)
	t0 := time.Unix(1000, 0)
	if d := p.NextDue(t0); d.Before(t0) || d.After(t0.Add(time.Second)) {
		t.Fatalf("listening, no foreign master: due %v", d)
	}
	now, _ := untilMaster(t, p)
	other := UUID{0, 0x1d, 0xc1, 6, 6, 6}
	p.Receive(syncWithInterval(other, 1, 1), now, now)
	if d := p.NextDue(now); d.Before(now) || d.After(now.Add(time.Second)) {
		t.Fatalf("master with a foreign master: due %v after now", d.Sub(now))
	}
}
