package discipline

import (
	"strings"
	"testing"
	"time"

	"sitegm/clock/quality"
)

// Epoch takes what the daemon used to decide: a dated, plausible epoch is
// the receiver's UTC (carried forward by the host's time until the clock
// is synchronized, then the clock's own UTC); an epoch read without the
// clock's time (Arrival zero) makes no sample; its accuracy estimate is
// taken when it is valid.
func TestEpochAndReceiverUTC(t *testing.T) {
	d, table := newDisc(t)
	host0 := time.Unix(5000, 0)
	if _, ok := d.ReceiverUTC(host0, time.Time{}); ok {
		t.Fatal("a receiver UTC before any epoch")
	}
	// An implausible date is never the receiver's UTC.
	d.Epoch(Epoch{UTC: utc0.AddDate(-20, 0, 0), Valid: true, Dated: true, Host: host0})
	if _, ok := d.ReceiverUTC(host0, time.Time{}); ok {
		t.Fatal("an implausible date taken as the receiver's UTC")
	}
	a, _ := d.Epoch(Epoch{UTC: utc0, Valid: true, Dated: true, Plausible: true, Host: host0})
	if a != (Action{}) || d.Status(table.UTCToTAI(utc0, false)).Pairing.Paired != 0 {
		t.Errorf("an epoch without the clock's time made a sample: %+v", a)
	}
	if u, ok := d.ReceiverUTC(host0.Add(1500*time.Millisecond), time.Time{}); !ok || !u.Equal(utc0.Add(1500*time.Millisecond)) {
		t.Errorf("receiver UTC 1.5 s later: %v %v", u, ok)
	}
	// Locked: the clock's own UTC (TAI less the leap seconds).
	for i := 0; i < 30; i++ {
		second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
	}
	if d.Quality().State() != quality.Locked {
		t.Fatalf("not locked: %s", d.Quality().State())
	}
	clk := table.UTCToTAI(utc0.Add(time.Hour), false)
	if u, ok := d.ReceiverUTC(host0, clk); !ok || !u.Equal(utc0.Add(time.Hour)) {
		t.Errorf("locked: receiver UTC %v, want the clock's %v", u, utc0.Add(time.Hour))
	}
	// A receiver accuracy past the lock threshold distrusts it.
	_, evs := d.Epoch(Epoch{UTC: utc0, Valid: true, Dated: true, Plausible: true, TAcc: 5 * time.Microsecond, Host: host0})
	if !strings.Contains(names(evs), "gnss_time_accuracy") || d.Quality().Distrusted() == "" {
		t.Errorf("a 5 µs receiver not distrusted: %s", names(evs))
	}
	if g := d.GPSMinusUTC(utc0); g != 18 {
		t.Errorf("GPS-UTC %d, want 18", g)
	}
}

// A leap announcement is placed on the receiver's timeline; none is
// taken before there is one.
func TestLeapInfoNeedsATimeline(t *testing.T) {
	d, _ := newDisc(t)
	host0 := time.Unix(5000, 0)
	if evs := d.LeapInfo(host0, time.Time{}, 18, true, 0, 0, false); len(evs) != 0 || d.ReceiverLS() {
		t.Fatalf("taken without a timeline: %s", names(evs))
	}
	d.Epoch(Epoch{UTC: utc0, Valid: true, Dated: true, Plausible: true, Host: host0})
	d.LeapInfo(host0.Add(time.Second), time.Time{}, 18, true, 0, 0, false)
	if !d.ReceiverLS() {
		t.Error("the receiver's leap count, consistent with the table, not taken")
	}
}

// The expired leap table is said once a day of the clock's own time.
func TestLeapTableExpiry(t *testing.T) {
	d, table := newDisc(t)
	table.Expires = utc0.Add(-time.Hour)
	count := func(from time.Time, seconds int) int {
		n := 0
		for i := 0; i < seconds; i++ {
			_, evs := d.Tick(table.UTCToTAI(from.Add(time.Duration(i)*time.Second), false))
			n += strings.Count(names(evs), "leap_table_expired")
		}
		return n
	}
	if n := count(utc0, 10); n != 1 {
		t.Errorf("%d warnings in the first 10 s, want 1", n)
	}
	if n := count(utc0.Add(25*time.Hour), 2); n != 1 {
		t.Errorf("%d warnings a day later, want 1", n)
	}
}

// The UTC offset policy (docs/clock.md, "The UTC offset when the table is
// old"), case by case, on a locked clock: currentUtcOffsetValid whenever
// synchronized (PTP time - offset is the UTC served), timeTraceable only
// when the offset itself is known and nobody contradicts it. A follower
// that uses the offset only when valid, and one that wants it valid and
// traceable too (ptp4l: else the larger of it and its own 37), both get
// the served UTC to the second in every case.
func TestUTCOffsetPolicy(t *testing.T) {
	for _, c := range []struct {
		name      string
		expired   bool
		ls        int // the receiver's GPS-UTC; 0: silent
		traceable bool
	}{
		{"table current, receiver silent", false, 0, true},
		{"table current, receiver agrees", false, 18, true},
		{"table expired, receiver confirms", true, 18, true},
		{"table expired, receiver silent", true, 0, false},
		{"table current, receiver contradicts", false, 19, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, table := newDisc(t)
			for i := 0; i < 30; i++ {
				second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
			}
			now := utc0.Add(30 * time.Second)
			if c.expired {
				table.Expires = now.AddDate(0, -5, 0)
			}
			if c.ls != 0 {
				d.ReceiverLeap(now, c.ls, true, 0, 0, false)
			}
			tp := d.Quality().TimeProperties(now, table, d.LeapKnown(now))
			if !tp.UTCOffsetValid || tp.CurrentUTCOffset != 37 || tp.TimeTraceable != c.traceable || !tp.FrequencyTraceable {
				t.Errorf("%+v", tp)
			}
			// Both kinds of follower: UTC = PTP time - the offset they use.
			ptp := now.Add(37 * time.Second)
			for _, traceableToo := range []bool{false, true} {
				off := 37 // ptp4l's own
				if tp.UTCOffsetValid && (!traceableToo || tp.TimeTraceable) || int(tp.CurrentUTCOffset) > off {
					off = int(tp.CurrentUTCOffset)
				}
				if got := ptp.Add(-time.Duration(off) * time.Second); !got.Equal(now) {
					t.Errorf("a follower (valid and traceable: %v) reads %v", traceableToo, got)
				}
			}
		})
	}
}

// Four weeks before the table expires, a WARNING a day says so; at the
// expiry the expired WARNING comes at once, not a day after the last.
func TestLeapTableExpiring(t *testing.T) {
	d, table := newDisc(t)
	table.Expires = utc0.Add(time.Hour)
	tick := func(at time.Time) string {
		_, evs := d.Tick(table.UTCToTAI(at, false))
		return names(evs)
	}
	if n := tick(utc0); !strings.Contains(n, "leap_table_expiring") {
		t.Errorf("four weeks before: %q", n)
	}
	if n := tick(utc0.Add(time.Minute)); strings.Contains(n, "leap_table") {
		t.Errorf("a minute later: %q", n)
	}
	if n := tick(table.Expires.Add(time.Second)); !strings.Contains(n, "leap_table_expired") {
		t.Errorf("at the expiry: %q", n)
	}
}
