package followers

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func ptpKey(iface string, id byte, port uint16) Key {
	k := Key{Kind: PTPv2, Iface: iface}
	k.ID = [10]byte{0, 0x1d, 0xc1, 0xff, 0xfe, 0, 0, id, byte(port >> 8), byte(port)}
	return k
}

// TestFloodOfInventedFollowers: a sender inventing a new identity per
// request never grows the table past its capacity, the real followers
// seen since stay, and every eviction is counted.
func TestFloodOfInventedFollowers(t *testing.T) {
	tb := New(64)
	t0 := time.Unix(1_800_000_000, 0)
	real := ptpKey("eth0.10", 1, 1)
	// The real slave was there first, at its 8 Delay_Req a second.
	tb.Seen(real, netip.MustParseAddr("10.0.0.5"), t0.Add(-250*time.Millisecond), 0, 0, false)
	tb.Seen(real, netip.MustParseAddr("10.0.0.5"), t0.Add(-125*time.Millisecond), 0, 0, false)
	for i := 0; i < 100_000; i++ {
		k := Key{Kind: PTPv2, Iface: "eth0.10"}
		k.ID[0], k.ID[1], k.ID[2] = byte(i), byte(i>>8), byte(i>>16)
		at := t0.Add(time.Duration(i) * time.Microsecond)
		tb.Seen(k, netip.MustParseAddr("10.0.0.66"), at, 0, 0, false)
		if i%1000 == 0 {
			tb.Seen(real, netip.MustParseAddr("10.0.0.5"), at, 0, 0, false)
		}
	}
	s := tb.Snapshot()
	if len(s) > 64 || tb.Evicted() < 100_000-64 {
		t.Fatalf("%d entries, %d evicted", len(s), tb.Evicted())
	}
	found := false
	for _, e := range s {
		found = found || e.Key == real
	}
	if !found {
		t.Error("the real follower was pushed out by invented ones")
	}
}

func TestIdentitiesAndIntervals(t *testing.T) {
	tb := New(8)
	t0 := time.Unix(1_800_000_000, 0)
	k := ptpKey("eth0.10", 0x42, 1)
	for i := 0; i < 20; i++ {
		tb.Seen(k, netip.MustParseAddr("10.0.0.5"), t0.Add(time.Duration(i)*125*time.Millisecond), 0, 0, false)
	}
	v1 := Key{Kind: PTPv1, Iface: "eth0.10", ID: [10]byte{0, 0x1d, 0xc1, 0x0a, 0x0b, 0x0c, 0, 1}}
	tb.Seen(v1, netip.MustParseAddr("10.0.0.6"), t0, 0, 0, false)
	n := Key{Kind: NTP, Iface: "eth0.20", Addr: netip.MustParseAddr("10.0.1.9")}
	tb.Seen(n, n.Addr, t0, 3, 1, true)
	for _, e := range tb.Snapshot() {
		switch e.Kind {
		case PTPv2:
			if e.Identity() != "001dc1.fffe.000042-1" || e.Count != 20 || e.Interval != 125*time.Millisecond {
				t.Errorf("v2 %s count %d interval %v", e.Identity(), e.Count, e.Interval)
			}
		case PTPv1:
			if e.Identity() != "00:1d:c1:0a:0b:0c-1" {
				t.Errorf("v1 %s", e.Identity())
			}
		case NTP:
			if e.Identity() != "10.0.1.9" || e.Version != 3 || e.Mode != 1 || e.KoD != 1 {
				t.Errorf("ntp %+v", e)
			}
		}
	}
	if a := tb.Active(t0.Add(3*time.Second), 2*time.Second); a[Key{Kind: PTPv2, Iface: "eth0.10"}] != 1 || len(a) != 1 {
		t.Errorf("active %v", a)
	}
}

func TestParseExpected(t *testing.T) {
	for _, ok := range []string{"10.0.0.5", "001dc1.fffe.000042", "001dc1.fffe.000042-1", "00:1d:c1:0a:0b:0c", "00:1d:c1:0a:0b:0c-2", "fe80::1"} {
		if err := ParseExpected(PTPv2, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "001dc1fffe000042", "001DC1.FFFE.000042", "001dc1.fffe.000042-x", "00:1d:c1:0a:0b", "camera-1", "001dc1.fffe.000042-70000"} {
		if ParseExpected(PTPv2, bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if ParseExpected(NTP, "001dc1.fffe.000042") == nil {
		t.Error("an NTP client expected by a clock identity")
	}
}

// TestWatch: an expected slave silent for 8 of its intervals (at least
// 10 s) is lost once, back once; one never seen is lost after 10 s.
func TestWatch(t *testing.T) {
	tb := New(16)
	t0 := time.Unix(1_800_000_000, 0)
	w := NewWatch(t0, []Expected{{Kind: PTPv2, Iface: "eth0.10", Name: "001dc1.fffe.000042"},
		{Kind: PTPv2, Iface: "eth0.10", Name: "10.0.0.77"}, {Kind: NTP, Iface: "eth0.20", Name: "10.0.1.9"}})
	k := ptpKey("eth0.10", 0x42, 1)
	var changes []Change
	for s := 0; s < 40; s++ {
		now := t0.Add(time.Duration(s) * time.Second)
		if s < 5 || s >= 30 {
			tb.Seen(k, netip.MustParseAddr("10.0.0.5"), now, 0, 0, false)
		}
		changes = append(changes, w.Check(now, tb.Snapshot())...)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Name+map[bool]string{true: " lost", false: " back"}[c.Lost])
	}
	want := []string{"10.0.0.77 lost", "001dc1.fffe.000042 lost", "001dc1.fffe.000042 back"}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
	if l := w.Lost(); len(l) != 1 || l[0].Name != "10.0.0.77" {
		t.Errorf("lost %v", l)
	}
}

// BenchmarkSeen is the cost the NTP workers and the Delay_Req fast path
// pay per request answered: one known follower, and a flood of new ones.
func BenchmarkSeen(b *testing.B) {
	tb := New(Capacity)
	k := Key{Kind: NTP, Iface: "eth0.20", Addr: netip.MustParseAddr("10.0.20.10")}
	t0 := time.Unix(1_800_000_000, 0)
	b.Run("known", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				tb.Seen(k, k.Addr, t0.Add(time.Duration(i)), 4, 3, false)
			}
		})
	})
	b.Run("new", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			tb.Seen(Key{Kind: NTP, Iface: "eth0.20", Addr: a}, a, t0, 4, 3, false)
		}
	})
}

// What the kernel edge hands over (hw/ptpnet's and hw/ntpnet's Seen)
// lands under the right key: v1 or v2 by the flag, NTP by address.
func TestSeenCallbacks(t *testing.T) {
	tb := New(16) // probation holds 4: room for the three newcomers
	t0 := time.Unix(1_800_000_000, 0)
	ptp, ntp := tb.PTPSeen("eth0.10"), tb.NTPSeen("eth0.20")
	id := [10]byte{0, 0x1d, 0xc1, 0xff, 0xfe, 0, 0, 0x42, 0, 1}
	ptp(false, id, netip.MustParseAddr("10.0.0.5"), t0)
	ptp(true, [10]byte{0, 0x1d, 0xc1, 0x0a, 0x0b, 0x0c, 0, 1}, netip.MustParseAddr("10.0.0.6"), t0)
	ntp(netip.MustParseAddr("10.0.1.9"), t0, 4, 3, false)
	got := map[string]string{}
	for _, e := range tb.Snapshot() {
		got[e.Kind.String()] = e.Iface + " " + e.Identity()
	}
	want := map[string]string{"ptp": "eth0.10 001dc1.fffe.000042-1", "ptpv1": "eth0.10 00:1d:c1:0a:0b:0c-1", "ntp": "eth0.20 10.0.1.9"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}
