package ntpnet

import (
	"net/netip"
	"testing"
	"time"
)

// Admission at accept: a source beyond its burst, the total beyond its
// rate and connections beyond the concurrency are shed before any TLS;
// a source's budget comes back with time; the source table stays bounded
// under a flood of addresses.
func TestKEAdmission(t *testing.T) {
	o := &KEOptions{MaxConcurrent: 4, Rate: 10, Burst: 10, SourceRate: 1, SourceBurst: 2, SourceTable: 8}
	o.defaults()
	now := time.Unix(1e9, 0)
	a := newAdmission(o, now)
	src := netip.MustParseAddr("10.0.0.1")
	first, second, third := a.admit(src, now), a.admit(src, now), a.admit(src, now)
	if !first || !second || third {
		t.Fatal("a source's burst of 2")
	}
	a.done()
	a.done()
	if !a.admit(src, now.Add(time.Second)) {
		t.Fatal("a source's budget did not come back after a second")
	}
	a.done()
	// Concurrency: four at once, the fifth shed.
	for i := range 4 {
		if !a.admit(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), now.Add(2*time.Second)) {
			t.Fatalf("connection %d shed below the limit", i)
		}
	}
	if a.admit(netip.MustParseAddr("10.2.0.1"), now.Add(2*time.Second)) {
		t.Fatal("a fifth concurrent exchange admitted")
	}
	for range 4 {
		a.done()
	}
	// The total: 10 at once from 100 sources, then nothing until it refills.
	n := 0
	for i := range 100 {
		if a.admit(netip.AddrFrom4([4]byte{10, 3, 0, byte(i)}), now.Add(10*time.Second)) {
			n++
			a.done()
		}
	}
	if n != 10 || a.sources.Size() > o.SourceTable {
		t.Fatalf("%d admitted of 100 sources (want the total burst, 10); %d sources tracked", n, a.sources.Size())
	}
}
