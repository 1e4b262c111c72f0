package leap

import (
	"os"
	"strings"
	"testing"
	"time"
)

func date(y int, m time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, m, d, h, mi, s, 0, time.UTC)
}

func TestSystemListParses(t *testing.T) {
	data, err := os.ReadFile("/usr/share/zoneinfo/leap-seconds.list")
	if err != nil {
		t.Skip("no system leap-seconds.list")
	}
	tb, err := ParseList(data)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Offset(date(2026, 1, 1, 0, 0, 0)) != 37 || tb.Expires.IsZero() || tb.Updated.IsZero() {
		t.Errorf("table %+v", tb)
	}
	// The same data as the built-in table.
	b := Builtin()
	for i, e := range b.Entries {
		if !tb.Entries[i].At.Equal(e.At) || tb.Entries[i].Offset != e.Offset {
			t.Fatalf("entry %d: list %+v, built-in %+v", i, tb.Entries[i], e)
		}
	}
	// A damaged copy is refused.
	bad := strings.Replace(string(data), "3692217600\t37", "3692217600\t38", 1)
	if bad == string(data) {
		bad = strings.Replace(string(data), "3692217600      37", "3692217600      38", 1)
	}
	if _, err := ParseList([]byte(bad)); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Errorf("tampered file: %v", err)
	}
}

func TestTZifAgrees(t *testing.T) {
	tz, err := FromTZif(DefaultTZif)
	if err != nil {
		t.Skipf("no tzdata right/UTC: %v", err)
	}
	b := Builtin()
	for _, when := range []time.Time{date(1980, 1, 1, 0, 0, 0), date(2000, 6, 1, 0, 0, 0), date(2016, 12, 31, 23, 59, 59), date(2017, 1, 1, 0, 0, 0), date(2026, 11, 24, 0, 0, 0)} {
		if tz.Offset(when) != b.Offset(when) {
			t.Errorf("%v: tzdata %d, built-in %d", when, tz.Offset(when), b.Offset(when))
		}
	}
}

func TestConversionsAroundInsertedLeap(t *testing.T) {
	b := Builtin()
	// 2016-12-31T23:59:60 was inserted; TAI-UTC went 36 -> 37.
	cases := []struct {
		utc    time.Time
		leap60 bool
		tai    time.Time
	}{
		{date(2016, 12, 31, 23, 59, 59), false, date(2017, 1, 1, 0, 0, 35)},
		{date(2017, 1, 1, 0, 0, 0), true, date(2017, 1, 1, 0, 0, 36)}, // 23:59:60
		{date(2017, 1, 1, 0, 0, 0), false, date(2017, 1, 1, 0, 0, 37)},
		{date(2017, 1, 1, 0, 0, 1), false, date(2017, 1, 1, 0, 0, 38)},
	}
	for _, c := range cases {
		if got := b.UTCToTAI(c.utc, c.leap60); !got.Equal(c.tai) {
			t.Errorf("UTCToTAI(%v, %v) = %v, want %v", c.utc, c.leap60, got, c.tai)
		}
		utc, l60 := b.TAIToUTC(c.tai)
		if !utc.Equal(c.utc) || l60 != c.leap60 {
			t.Errorf("TAIToUTC(%v) = %v %v, want %v %v", c.tai, utc, l60, c.utc, c.leap60)
		}
	}
	if b.Pending(date(2016, 12, 31, 0, 0, 1)) != 1 || b.Pending(date(2016, 12, 30, 12, 0, 0)) != 0 || b.Pending(date(2017, 1, 1, 0, 0, 0)) != 0 {
		t.Error("pending flags wrong")
	}
}

func TestDeletedLeap(t *testing.T) {
	b := Builtin()
	at := date(2030, 7, 1, 0, 0, 0)
	b.Entries = append(b.Entries, Entry{At: at, Offset: 36})
	if b.Pending(date(2030, 6, 30, 10, 0, 0)) != -1 {
		t.Error("no pending deletion")
	}
	// 23:59:58 UTC is followed by 00:00:00; TAI runs on.
	t58 := b.UTCToTAI(date(2030, 6, 30, 23, 59, 58), false)
	t00 := b.UTCToTAI(at, false)
	if t00.Sub(t58) != time.Second {
		t.Errorf("across the deletion TAI advanced %v", t00.Sub(t58))
	}
	for _, tai := range []time.Time{t58, t00, t00.Add(time.Second)} {
		utc, l := b.TAIToUTC(tai)
		if l || !b.UTCToTAI(utc, false).Equal(tai) {
			t.Errorf("round trip %v -> %v", tai, utc)
		}
	}
}

func TestExpiryAndLoadFallbacks(t *testing.T) {
	b := Builtin()
	if b.Expired(date(2017, 3, 1, 0, 0, 0)) || !b.Expired(date(2026, 1, 1, 0, 0, 0)) {
		t.Error("built-in expiry rule")
	}
	read := func(p string) ([]byte, error) { return nil, os.ErrNotExist }
	tb, notes := Load(read, "/nope/leap-seconds.list", "/nope/right/UTC")
	if tb.Source != "built-in" || len(notes) != 3 {
		t.Errorf("fallback: %s %v", tb.Source, notes)
	}
}

func TestReceiverMerges(t *testing.T) {
	b := Builtin()
	now := date(2027, 3, 1, 12, 0, 0)
	// Current offset agrees: nothing to note.
	if msg, ref := b.MergeReceiver(now, 18, true, 0, 0, false); msg != "" || ref != "" {
		t.Errorf("agreeing receiver: %q %q", msg, ref)
	}
	// An announced insertion at the end of June the table lacks.
	in := date(2027, 7, 1, 0, 0, 0).Sub(now)
	msg, _ := b.MergeReceiver(now, 18, true, 1, in, true)
	if !strings.Contains(msg, "announces a leap second (+1) at 2027-07-01T00:00:00Z") {
		t.Errorf("announcement: %q", msg)
	}
	if b.Pending(date(2027, 6, 30, 1, 0, 0)) != 1 || b.Offset(date(2027, 7, 1, 0, 0, 0)) != 38 {
		t.Error("announcement not merged")
	}
	// Announced twice: merged once.
	b.MergeReceiver(now.Add(time.Hour), 18, true, 1, in-time.Hour, true)
	n := 0
	for _, e := range b.Entries {
		if e.Offset == 38 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("merged %d times", n)
	}
}

// A receiver's message about the second before the leap, read just after
// the midnight (its burst came late), still says the old offset: the
// expired table the receiver itself extended is not "corrected" back
// across the leap (it once was, and an expired-table box served UTC a
// second off after a leap, found by the kernel lab's leap scenario).
// From two seconds after, the receiver is heard again.
func TestReceiverAcrossTheLeap(t *testing.T) {
	b := Builtin()
	mid := date(2027, 7, 1, 0, 0, 0)
	b.MergeReceiver(mid.Add(-time.Hour), 18, true, 1, time.Hour, true)
	for _, late := range []time.Duration{0, 150 * time.Millisecond, 1500 * time.Millisecond} {
		if msg, ref := b.MergeReceiver(mid.Add(late), 18, true, 1, -late, true); msg != "" || ref != "" || b.Offset(mid.Add(late)) != 38 {
			t.Errorf("%v after: %q %q, offset %d", late, msg, ref, b.Offset(mid.Add(late)))
		}
	}
	if msg, _ := b.MergeReceiver(mid.Add(3*time.Second), 19, true, 1, -3*time.Second, true); msg != "" || b.Offset(mid.Add(3*time.Second)) != 38 {
		t.Errorf("after: %q", msg)
	}
}

// Issue 11 item 9: what a receiver says about leap seconds is checked
// against the calendar and the table before it changes anything.
func TestReceiverLeapPlausibility(t *testing.T) {
	valid := &Table{Source: "leap-seconds.list", Entries: Builtin().Entries, Expires: date(2027, 6, 28, 0, 0, 0)}
	clone := func(tb *Table) *Table { c := *tb; c.Entries = append([]Entry(nil), tb.Entries...); return &c }
	now := date(2026, 11, 26, 12, 0, 0)
	for _, c := range []struct {
		name       string
		tb         *Table
		now        time.Time
		currLS     int
		change     int
		in         time.Duration
		wantMerged bool
		wantRef    string
	}{
		{"mid-month announcement", Builtin(), now, 18, 1, date(2027, 3, 15, 0, 0, 0).Sub(now), false, "not the end of a UTC month"},
		{"two seconds", Builtin(), now, 18, 2, date(2027, 7, 1, 0, 0, 0).Sub(now), false, "a leap second is one second"},
		{"years ahead", Builtin(), now, 18, 1, date(2029, 1, 1, 0, 0, 0).Sub(now), false, "too far"},
		{"against a valid table", valid, now, 18, 1, date(2027, 1, 1, 0, 0, 0).Sub(now), false, "does not have"},
		{"current offset against a valid table", valid, now, 20, 0, 0, false, "receiver not believed"},
		{"three seconds off an expired table", Builtin(), now, 21, 0, 0, false, "more than one leap second"},
		{"end of June, expired table", Builtin(), now, 18, 1, date(2027, 7, 1, 0, 0, 1).Sub(now), true, ""},
		{"end of March, a second early", Builtin(), now, 18, -1, date(2027, 3, 31, 23, 59, 59).Sub(now), true, ""},
		{"one second more, expired table", Builtin(), now, 19, 0, 0, true, ""},
	} {
		tb := clone(c.tb)
		merged, refused := tb.MergeReceiver(c.now, c.currLS, true, c.change, c.in, c.change != 0)
		if (merged != "") != c.wantMerged || (c.wantRef == "") != (refused == "") || !strings.Contains(refused, c.wantRef) {
			t.Errorf("%s: merged %q refused %q", c.name, merged, refused)
		}
		if !c.wantMerged && len(tb.Entries) != len(c.tb.Entries) {
			t.Errorf("%s: table changed", c.name)
		}
	}
	// A merged announcement lands exactly at the month's end, whatever
	// second the receiver's count pointed at.
	tb := Builtin()
	tb.MergeReceiver(now, 18, true, 1, date(2027, 7, 1, 0, 0, 1).Sub(now), true)
	if tb.Pending(date(2027, 6, 30, 12, 0, 0)) != 1 || tb.Offset(date(2027, 6, 30, 23, 59, 59)) != 37 || tb.Offset(date(2027, 7, 1, 0, 0, 0)) != 38 {
		t.Error("announcement not placed at 2027-06-30T23:59:60")
	}
}

func FuzzParseList(f *testing.F) {
	if data, err := os.ReadFile("/usr/share/zoneinfo/leap-seconds.list"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("#$ 3960835200\n#@ 3991593600\n3692217600 37\n#h 0 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := ParseList(data)
		if err != nil {
			return
		}
		for _, e := range tb.Entries {
			_ = tb.UTCToTAI(e.At, false)
			tb.TAIToUTC(e.At)
		}
	})
}

// A deleted leap second (ITU-R TF.460-6 2.2 allows one; none has happened):
// UTC goes from 23:59:58 straight to 00:00:00, and TAI-UTC drops by one.
func TestTAIToUTCAcrossDeletedSecond(t *testing.T) {
	tb := Builtin()
	tb.Entries = append(tb.Entries, Entry{At: time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC), Offset: 36})
	for _, c := range []struct{ tai, utc string }{
		{"2030-07-01T00:00:35.5Z", "2030-06-30T23:59:58.5Z"},
		{"2030-07-01T00:00:36Z", "2030-07-01T00:00:00Z"},
		{"2030-07-01T00:00:37Z", "2030-07-01T00:00:01Z"},
	} {
		tai, _ := time.Parse(time.RFC3339Nano, c.tai)
		want, _ := time.Parse(time.RFC3339Nano, c.utc)
		if got, leap60 := tb.TAIToUTC(tai); !got.Equal(want) || leap60 {
			t.Errorf("TAI %s: UTC %v leap60 %v, want %s", c.tai, got, leap60, c.utc)
		}
		if back := tb.UTCToTAI(want, false); !back.Equal(tai) {
			t.Errorf("UTC %s back to TAI %v, want %s", c.utc, back, c.tai)
		}
	}
	if tb.Pending(time.Date(2030, 6, 30, 12, 0, 0, 0, time.UTC)) != -1 {
		t.Error("the deleted second is not announced")
	}
}
