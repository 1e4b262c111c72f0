// Package leap is sitegm's one leap-second table: the only place where UTC
// and TAI are converted. PTP speaks TAI, NTP and NMEA speak UTC.
//
// Sources, best first: the IERS/NIST leap-seconds.list (expiry and SHA-1
// checked), the tzdata "right/UTC" file, a table compiled into sitegm; a
// receiver's UBX NAV-TIMELS adds what it knows (an announced leap second
// that the file does not have yet, or a current offset the file gets wrong).
//
// Times on the TAI scale are carried in a time.Time whose Unix seconds
// count TAI seconds since 1970-01-01T00:00:00 TAI, the PTP epoch (IEEE
// 1588-2019 clause 7.2.3): TAI = POSIX UTC + (TAI-UTC).
package leap

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/facebook/time/leaphash"
	"github.com/facebook/time/leapsectz"
)

// NTPEpochOffset is the seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTPEpochOffset = 2208988800

// GPSMinusTAI: GPS time is TAI - 19 s (IS-GPS-200), so TAI-UTC = GPS-UTC + 19.
const GPSMinusTAI = -19

// Entry says TAI-UTC is Offset seconds from the UTC instant At on.
type Entry struct {
	At     time.Time
	Offset int
}

// Table is a set of leap seconds with what is known about its validity.
type Table struct {
	Entries []Entry // sorted by At
	Updated time.Time
	Expires time.Time // zero: unknown (tzdata, built in)
	Source  string
	// Receiver notes what a GNSS receiver told us (NAV-TIMELS), if anything.
	Receiver string
}

// builtinNTP is leap-seconds.list's data as of its 2017 entry: NTP seconds
// of each change and the new TAI-UTC.
var builtinNTP = [][2]int64{
	{2272060800, 10}, {2287785600, 11}, {2303683200, 12}, {2335219200, 13}, {2366755200, 14},
	{2398291200, 15}, {2429913600, 16}, {2461449600, 17}, {2492985600, 18}, {2524521600, 19},
	{2571782400, 20}, {2603318400, 21}, {2634854400, 22}, {2698012800, 23}, {2776982400, 24},
	{2840140800, 25}, {2871676800, 26}, {2918937600, 27}, {2950473600, 28}, {2982009600, 29},
	{3029443200, 30}, {3076704000, 31}, {3124137600, 32}, {3345062400, 33}, {3439756800, 34},
	{3550089600, 35}, {3644697600, 36}, {3692217600, 37},
}

func ntpTime(s int64) time.Time { return time.Unix(s-NTPEpochOffset, 0).UTC() }

// Builtin is the table compiled into sitegm, with an unknown expiry.
func Builtin() *Table {
	t := &Table{Source: "built-in"}
	for _, e := range builtinNTP {
		t.Entries = append(t.Entries, Entry{At: ntpTime(e[0]), Offset: int(e[1])})
	}
	return t
}

// ParseList reads an IERS/NIST leap-seconds.list: data lines "NTPSECONDS
// OFFSET", "#$ NTPSECONDS" (last update), "#@ NTPSECONDS" (expiry) and
// "#h HASH" (SHA-1 of the data, grouped in five 8-digit words). A file whose
// hash does not match is refused: it was damaged or edited.
func ParseList(data []byte) (*Table, error) {
	t := &Table{Source: "leap-seconds.list"}
	var hash string
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case strings.HasPrefix(s, "#$"), strings.HasPrefix(s, "#@"):
			v, err := strconv.ParseInt(strings.TrimSpace(s[2:]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad %s value", line, s[:2])
			}
			if s[1] == '$' {
				t.Updated = ntpTime(v)
			} else {
				t.Expires = ntpTime(v)
			}
		case strings.HasPrefix(s, "#h"):
			hash = strings.Join(strings.Fields(s[2:]), " ")
		case strings.HasPrefix(s, "#"), strings.TrimSpace(s) == "":
		default:
			body, _, _ := strings.Cut(s, "#")
			f := strings.Fields(body)
			if len(f) != 2 {
				return nil, fmt.Errorf("line %d: want NTPSECONDS OFFSET", line)
			}
			at, err1 := strconv.ParseInt(f[0], 10, 64)
			off, err2 := strconv.Atoi(f[1])
			if err1 != nil || err2 != nil || off < 0 || off > 1000 {
				return nil, fmt.Errorf("line %d: want NTPSECONDS OFFSET", line)
			}
			t.Entries = append(t.Entries, Entry{At: ntpTime(at), Offset: off})
		}
	}
	if len(t.Entries) == 0 {
		return nil, fmt.Errorf("no leap second entries")
	}
	if hash == "" {
		return nil, fmt.Errorf("no #h hash line")
	}
	if got := leaphash.Compute(string(data)); got != hash {
		return nil, fmt.Errorf("hash mismatch: file says %s, data gives %s", hash, got)
	}
	if !sort.SliceIsSorted(t.Entries, func(i, j int) bool { return t.Entries[i].At.Before(t.Entries[j].At) }) {
		return nil, fmt.Errorf("entries out of order")
	}
	return t, nil
}

// FromTZif reads the leap seconds of a tzdata "right/" file.
func FromTZif(path string) (*Table, error) {
	ls, err := leapsectz.Parse(path)
	if err != nil {
		return nil, err
	}
	t := &Table{Source: "tzdata " + path, Entries: []Entry{{At: ntpTime(builtinNTP[0][0]), Offset: 10}}}
	for _, l := range ls {
		// Nleap counts leap seconds since 1972; TAI-UTC was 10 s then.
		t.Entries = append(t.Entries, Entry{At: l.Time().UTC(), Offset: 10 + int(l.Nleap)})
	}
	return t, nil
}

// Offset is TAI-UTC in force at the UTC instant utc (a normalised leap
// second 23:59:60 counts as the next day: use UTCToTAI for labels).
func (t *Table) Offset(utc time.Time) int {
	i := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].At.After(utc) })
	if i == 0 {
		return 10
	}
	return t.Entries[i-1].Offset
}

// UTCToTAI converts a UTC label. leap60 marks the inserted second 23:59:60,
// which Go normalises to the next day's 00:00:00.
func (t *Table) UTCToTAI(utc time.Time, leap60 bool) time.Time {
	if leap60 {
		return utc.Add(time.Duration(t.Offset(utc.Add(-time.Second))) * time.Second)
	}
	return utc.Add(time.Duration(t.Offset(utc)) * time.Second)
}

// TAIToUTC converts TAI to UTC; during an inserted leap second it returns
// the normalised next-day time and leap60.
func (t *Table) TAIToUTC(tai time.Time) (utc time.Time, leap60 bool) {
	prev := 10
	off := 10
	for _, e := range t.Entries {
		// The TAI instant UTC changes offset: for an inserted second the
		// start of 23:59:60 (At on the old offset), for a deleted one the
		// instant 23:59:58 ends (At on the new offset).
		change := e.At.Add(time.Duration(min(prev, e.Offset)) * time.Second)
		if tai.Before(change) {
			break
		}
		if e.Offset > prev && tai.Before(e.At.Add(time.Duration(e.Offset)*time.Second)) {
			return tai.Add(-time.Duration(prev) * time.Second).UTC(), true
		}
		off, prev = e.Offset, e.Offset
	}
	return tai.Add(-time.Duration(off) * time.Second).UTC(), false
}

// Expired reports whether the table's validity has run out at now. A table
// without a known expiry counts as expired from six months after its last
// entry (IERS announces leap seconds about six months ahead).
func (t *Table) Expired(now time.Time) bool {
	if !t.Expires.IsZero() {
		return !now.Before(t.Expires)
	}
	if len(t.Entries) == 0 {
		return true
	}
	return now.After(t.Entries[len(t.Entries)-1].At.AddDate(0, 6, 0))
}

// Pending returns +1 or -1 when TAI-UTC changes at the end of the UTC day
// containing utc (the PTP leap61/leap59 flags and the NTP leap indicator
// are set for that whole day), else 0.
func (t *Table) Pending(utc time.Time) int {
	y, m, d := utc.Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	for i, e := range t.Entries {
		if e.At.Equal(midnight) {
			prev := 10
			if i > 0 {
				prev = t.Entries[i-1].Offset
			}
			switch {
			case e.Offset > prev:
				return 1
			case e.Offset < prev:
				return -1
			}
		}
	}
	return 0
}

// NearLeap reports whether utc lies within d after a midnight at which
// TAI-UTC changed: there a UTC clock's readings are ambiguous (Linux
// repeats 23:59:59 for an inserted second, and applies the change at its
// next tick rather than at the instant), and neither a sample of it nor a
// comparison with it is taken.
func (t *Table) NearLeap(utc time.Time, d time.Duration) bool {
	mid := utc.Truncate(24 * time.Hour)
	return utc.Sub(mid) <= d && t.Pending(mid.Add(-time.Hour)) != 0
}

// MergeReceiver merges what a GNSS receiver says (UBX NAV-TIMELS): the
// current GPS-UTC offset and an announced change, at UTC time now (the
// receiver's epoch, or the disciplined clock: never the host's clock,
// which may be anything). It returns what it merged and what it refused,
// each a description for the log (empty for nothing).
//
// A receiver is believed only where the table cannot be: the IERS list is
// authoritative until it expires, so a receiver contradicting it before
// then is refused; past the expiry a receiver may add what the table could
// not know, at most one leap second either way. An announced leap second
// must fall at the end of a UTC month (ITU-R TF.460-6 2.1: the last second
// of a month, December and June preferred) and within about a year (the
// GPS navigation message announces it months ahead): anything else is a
// receiver bug or a forgery, and placing it a second off made sitegm serve
// UTC a second, then two seconds wrong.
func (t *Table) MergeReceiver(now time.Time, currLS int, valid bool, change int, eventIn time.Duration, eventValid bool) (merged, refused string) {
	var msgs, refusals []string
	// Within seconds after a leap the table knows, the message may be the
	// second before's, read late (a burst's latency can pass a second):
	// its current offset is not compared then, or the table would be
	// "corrected" back across the leap it has just made.
	if valid && !t.NearLeap(now, 2*time.Second) {
		want := currLS - GPSMinusTAI
		got := t.Offset(now)
		switch {
		case want == got:
		case !t.Expired(now):
			refusals = append(refusals, fmt.Sprintf("receiver says TAI-UTC is %d s, the leap second table (%s) says %d s and is valid: receiver not believed",
				want, t.Source, got))
		case want-got > 1 || got-want > 1:
			refusals = append(refusals, fmt.Sprintf("receiver says TAI-UTC is %d s, %d s from the expired table: more than one leap second, not believed",
				want, want-got))
		default:
			// The leap second the table missed fell at a month end before
			// now; the latest one possible is this month's start.
			at := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
			t.Entries = append(t.Entries, Entry{At: at, Offset: want})
			msgs = append(msgs, fmt.Sprintf("receiver says TAI-UTC is %d s, the expired table said %d s", want, got))
		}
	}
	if eventValid && change != 0 && eventIn > 0 {
		at := now.Add(eventIn)
		month := monthStart(at)
		switch {
		case change != 1 && change != -1:
			refusals = append(refusals, fmt.Sprintf("receiver announces a change of %+d s: a leap second is one second", change))
		case eventIn > 400*24*time.Hour:
			refusals = append(refusals, fmt.Sprintf("receiver announces a leap second %v ahead: too far to be real", eventIn.Round(time.Hour)))
		case at.Sub(month).Abs() > 2*time.Second:
			refusals = append(refusals, fmt.Sprintf("receiver announces a leap second at %s: not the end of a UTC month", at.Format(time.RFC3339)))
		default:
			before, after := t.Offset(month.Add(-time.Second)), t.Offset(month)
			switch {
			case after-before == change:
				// Known already.
			case after != before:
				refusals = append(refusals, fmt.Sprintf("receiver announces %+d s at %s, the table says %+d s", change, month.Format(time.RFC3339), after-before))
			case !t.Expired(month):
				refusals = append(refusals, fmt.Sprintf("receiver announces a leap second at %s that the leap second table (%s), valid then, does not have",
					month.Format(time.RFC3339), t.Source))
			default:
				t.Entries = append(t.Entries, Entry{At: month, Offset: before + change})
				msgs = append(msgs, fmt.Sprintf("receiver announces a leap second (%+d) at %s", change, month.Format(time.RFC3339)))
			}
		}
	}
	if len(msgs) > 0 {
		sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].At.Before(t.Entries[j].At) })
		t.Receiver = strings.Join(msgs, "; ")
	}
	return strings.Join(msgs, "; "), strings.Join(refusals, "; ")
}

// monthStart is the start of the UTC month nearest to t.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	this := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	next := this.AddDate(0, 1, 0)
	if next.Sub(t) < t.Sub(this) {
		return next
	}
	return this
}

// DefaultTZif is tzdata's leap-second-aware UTC zone.
const DefaultTZif = "/usr/share/zoneinfo/right/UTC"

// Load reads the best table available: listPath (leap-seconds.list), else
// tzPath (tzdata right/UTC), else the built-in table. Problems met on the
// way come back as notes for the log; Load itself never fails.
func Load(readFile func(string) ([]byte, error), listPath, tzPath string) (*Table, []string) {
	var notes []string
	if listPath != "" {
		data, err := readFile(listPath)
		if err == nil {
			t, perr := ParseList(data)
			if perr == nil {
				t.Source = listPath
				return t, nil
			}
			err = perr
		}
		notes = append(notes, fmt.Sprintf("leap-seconds.list %s: %v", listPath, err))
	}
	if tzPath != "" {
		t, err := FromTZif(tzPath)
		if err == nil {
			return t, notes
		}
		notes = append(notes, fmt.Sprintf("tzdata %s: %v", tzPath, err))
	}
	notes = append(notes, "using the built-in leap second table (last entry 2017-01-01)")
	return Builtin(), notes
}
