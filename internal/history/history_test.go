package history

import (
	"math"
	"testing"
	"time"
)

// TestFixedSize: two days of one value a second keep exactly 360 fine
// and 720 coarse buckets, the newest last, each bucket's statistics
// right; NaN leaves a gap.
func TestFixedSize(t *testing.T) {
	s := New()
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 2*86400; i++ {
		s.Add("offset", "s", t0.Add(time.Duration(i)*time.Second), float64(i%10))
	}
	s.Add("offset", "s", t0.Add(2*86400*time.Second), math.NaN())
	now := t0.Add(2*86400*time.Second - time.Second)
	_, fine := s.Points("offset", now, time.Hour)
	_, coarse := s.Points("offset", now, 24*time.Hour)
	if len(fine) != 360 || len(coarse) != 720 {
		t.Fatalf("%d fine, %d coarse", len(fine), len(coarse))
	}
	last := fine[len(fine)-1]
	if !last.T.Equal(now.Truncate(FineStep)) || last.N != 10 || last.Min != 0 || last.Max != 9 || last.Mean() != 4.5 || last.Last != 9 {
		t.Errorf("last fine bucket %+v", last)
	}
	for i := 1; i < len(coarse); i++ {
		if coarse[i].T.Sub(coarse[i-1].T) != CoarseStep {
			t.Fatalf("coarse buckets out of order at %d", i)
		}
	}
	if _, p := s.Points("offset", now, 5*time.Minute); len(p) != 31 { // 30 and the partial one the span starts in
		t.Errorf("5 minutes: %d buckets", len(p))
	}
	if u, p := s.Points("none", now, time.Hour); u != "" || p != nil {
		t.Error("a series never added")
	}
	if n := s.Names(); len(n) != 1 || n[0] != "offset" {
		t.Errorf("names %v", n)
	}
}
