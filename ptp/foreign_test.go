package ptp

import (
	stdcmp "cmp"
	"testing"
	"time"
)

// The table both PTP versions keep: a master qualifies with its second
// message within the window, is forgotten after the timeout, and a full
// table lets a better newcomer in by dropping the worst entry, one heard
// once first; a worse newcomer is dropped.
func TestForeignTable(t *testing.T) {
	ft := Foreign[string, int]{Max: 3, Cmp: stdcmp.Compare[int]}
	t0 := time.Unix(100, 0)
	s := time.Second
	ft.Hear("a", 5, 2*s, t0)
	if q := ft.Qualified(t0, 4); len(q) != 0 {
		t.Fatalf("qualified on one message: %v", q)
	}
	ft.Hear("a", 5, 2*s, t0.Add(2*s))
	ft.Hear("b", 7, 2*s, t0.Add(2*s))
	ft.Hear("b", 7, 2*s, t0.Add(4*s))
	if best, ok := ft.Best(t0.Add(4*s), 4); !ok || best != 5 {
		t.Fatalf("best %v %v", best, ok)
	}
	ft.Hear("c", 9, 2*s, t0.Add(4*s)) // heard once: the first to go
	if isNew, dropped := ft.Hear("d", 8, 2*s, t0.Add(5*s)); !isNew || dropped || ft.Len() != 3 {
		t.Fatalf("a better newcomer: new %v dropped %v, %d entries", isNew, dropped, ft.Len())
	}
	if _, dropped := ft.Hear("e", 10, 2*s, t0.Add(5*s)); !dropped {
		t.Fatal("a newcomer worse than every entry was let in")
	}
	// a was last heard at 2 s: after 3 intervals (6 s) it is forgotten.
	if next := ft.NextExpiry(3); !next.Equal(t0.Add(8*s + time.Millisecond)) {
		t.Errorf("next expiry %v", next.Sub(t0))
	}
	ft.Expire(t0.Add(8*s+time.Millisecond), 3)
	if best, ok := ft.Best(t0.Add(8*s), 4); ft.Len() != 2 || !ok || best != 7 {
		t.Errorf("after a's timeout: %d entries, best %v", ft.Len(), best)
	}
}
