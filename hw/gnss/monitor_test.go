package gnss

import (
	"errors"
	"strings"
	"testing"
	"time"

	"sitegm/hw/serial"
)

// names takes the monitor's events and returns their names.
func names(m *Monitor) []string {
	var ev []string
	for _, e := range m.Events() {
		ev = append(ev, e.Name)
	}
	return ev
}

func TestGNSSMonitorLifecycle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewMonitor("/dev/gnss0", t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rep := func(valid bool) Report {
		return Report{Valid: valid, HasDate: true, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Sats: 8, Fix: Fix3D}
	}
	expect := func(want ...string) {
		t.Helper()
		if got := names(m); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	m.Link(serial.Link{Up: false, Err: errors.New("no such file")}, at(0))
	expect() // starts absent: nothing changed
	m.Link(serial.Link{Up: true}, at(1))
	expect("receiver_open")
	m.Tick(at(4.5), 123)
	expect("gnss_silent")
	m.Tick(at(5), 123)
	expect() // once per silence
	m.Report(rep(false), at(6))
	expect("gnss_no_fix")
	m.Report(rep(true), at(7))
	expect() // one usable report is not yet a fix
	m.Report(rep(true), at(7.5))
	expect("gnss_fix_gained")
	m.Report(rep(true), at(8))
	m.Tick(at(9), 0)
	expect()
	m.Report(rep(false), at(10))
	expect() // a fix is lost after 3 s without a usable report
	m.Report(rep(false), at(11))
	expect("gnss_fix_lost")
	m.Report(rep(true), at(12))
	m.Report(rep(true), at(13))
	expect("gnss_fix_gained")
	m.Tick(at(16.5), 0)
	expect("gnss_fix_lost")
	if m.Snapshot().State != StateSilent {
		t.Errorf("state %s", m.Snapshot().State)
	}
	m.Report(rep(true), at(17))
	m.Report(rep(true), at(17.5))
	expect("gnss_fix_gained")
	m.Link(serial.Link{Up: false, Err: errors.New("EIO")}, at(16))
	expect("gnss_fix_lost", "receiver_gone")
	m.Link(serial.Link{Up: false, Err: errors.New("ENOENT")}, at(17))
	expect()
	m.Link(serial.Link{Up: true}, at(20))
	expect("receiver_back")
	for i := 0; i < 3; i++ {
		m.Text(Text{Severity: 1, Text: "ANTENNA OPEN"}, at(21+float64(i)))
	}
	expect("gnss_text")
}

// Issue 11 item 15: a fix that flaps every second for ten minutes logs
// no fix event after the first, and one gnss_fix_unstable line a minute;
// dates that cannot be right are summed up the same way.
func TestGNSSFixFlapping(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewMonitor("/dev/gnss0", t0)
	m.Link(serial.Link{Up: true}, t0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	m.Report(Report{Valid: true, HasDate: true, Sats: 5}, at(1))
	m.Report(Report{Valid: true, HasDate: true, Sats: 5}, at(2))
	names(m)
	for s := 3; s < 603; s++ {
		r := Report{Valid: s%2 == 0, HasDate: true, Sats: 4}
		if s%10 == 5 {
			r = Report{HasDate: true, Implausible: "date 1980-01-06 is more than one GPS week rollover before the date floor"}
		}
		m.Report(r, at(s))
		m.Tick(at(s).Add(500*time.Millisecond), 0)
	}
	count := map[string]int{}
	for _, e := range names(m) {
		count[e]++
	}
	if count["gnss_fix_lost"]+count["gnss_fix_gained"] > 0 || count["gnss_fix_unstable"] < 9 || count["gnss_fix_unstable"] > 11 ||
		count["gnss_date_implausible"] < 9 || count["gnss_date_implausible"] > 11 || len(count) != 2 {
		t.Errorf("ten minutes of flapping logged %v", count)
	}
	if m.Snapshot().Implausible != 60 {
		t.Errorf("implausible %d", m.Snapshot().Implausible)
	}
}

// IdentifiedSince says whether the receiver said what it is at or after
// a time (the serial reader asks again until it has, since its open).
func TestIdentifiedSince(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	m := NewMonitor("/dev/ttyS0", t0)
	if m.IdentifiedSince(t0) {
		t.Fatal("identified before anything was said")
	}
	m.Version(Version{Module: "ZED-F9T"}, t0.Add(time.Second))
	if !m.IdentifiedSince(t0) || !m.IdentifiedSince(t0.Add(time.Second)) {
		t.Error("the answer a second after the open not seen")
	}
	if m.IdentifiedSince(t0.Add(2 * time.Second)) {
		t.Error("an answer from before a later open counted for it")
	}
	m.Version(Version{Module: "ZED-F9T"}, t0.Add(3*time.Second)) // the same again: no event, still an answer
	if !m.IdentifiedSince(t0.Add(2 * time.Second)) {
		t.Error("a repeated answer not counted")
	}
}
