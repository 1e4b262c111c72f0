package gnss

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// capturesDir holds real receiver captures with gpsd's own decoding of each
// (the .chk files), from gpsd's regression suite.
const capturesDir = "../../../shared/testdata/gnss/gpsd-logs"

// decodeFile runs a capture through the decoder in small chunks (as a serial
// port delivers them) and returns the reports.
func decodeFile(t testing.TB, path string, opt Options) ([]Report, *Decoder) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(opt)
	var out []Report
	collect := func(evs []Event) {
		for _, ev := range evs {
			if r, ok := ev.(Report); ok {
				out = append(out, r)
			}
		}
	}
	for i := 0; i < len(data); i += 37 {
		collect(d.Feed(data[i:min(i+37, len(data))], time.Time{}))
	}
	collect(d.Flush(time.Time{}))
	return out, d
}

// gpsdSeconds reads the TPV objects gpsd reported with a time, by whole UTC
// second, and whether gpsd had a fix (mode 2 or 3) in that second.
func gpsdSeconds(t testing.TB, path string, shift time.Duration) map[int64]bool {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	secs := map[int64]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var o struct {
			Class string `json:"class"`
			Time  string `json:"time"`
			Mode  int    `json:"mode"`
		}
		if json.Unmarshal(line, &o) != nil || o.Class != "TPV" || o.Time == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, o.Time)
		if err != nil {
			t.Fatalf("%s: bad gpsd time %q", path, o.Time)
		}
		k := tm.Add(shift).Unix()
		secs[k] = secs[k] || o.Mode >= 2
	}
	return secs
}

// A capture exception: one second where sitegm and gpsd legitimately
// disagree, and why. Seconds are "15:04:05" UTC within the capture.
type capException struct {
	second string
	why    string
}

// Reasons shared by several captures. Every one is gpsd leaving out a
// second whose sentences say, complete and checksummed, that the receiver
// had a dated, valid fix; none is sitegm reporting a time gpsd contradicts.
const (
	whyFirstFix  = "first epoch with a valid fix (RMC A and GGA quality > 0): gpsd prints its first timed TPV only from the next cycle, once it has found the cycle's end"
	whyLastCycle = "the capture ends inside this epoch: gpsd never saw the end of its cycle; sitegm reports the dated, valid RMC/GGA it received"
	whyNoGLL     = "this epoch lacks the GLL that gpsd learned as its end-of-cycle sentence, so gpsd folded it into the next cycle; its RMC and GGA are valid"
)

// captureExceptions lists every second, per capture, where our valid time
// reports differ from gpsd's. The test fails on any difference not listed,
// and on any listed second that agrees.
//
// Differences that are not listed because they are not differences: gpsd
// also prints the receiver's time without a fix (TPV mode 1, e.g. ZDA from
// a Hemisphere or SkyTraq before its fix, RMC status V with a date); sitegm
// reports those epochs as invalid, and the test counts that as agreement.
var captureExceptions = map[string][]capException{
	"ac12_binary.log":                  {{"18:35:30", whyFirstFix}},
	"bt451.log":                        {{"15:25:04", whyFirstFix}},
	"haicom-305N.log":                  {{"09:53:04", whyFirstFix}},
	"motorola-t805.log":                {{"21:26:14", whyFirstFix}},
	"mtk-3301.log":                     {{"08:14:36", whyFirstFix}},
	"myguide-3100.log":                 {{"10:50:29", whyFirstFix}},
	"tr737A+.log":                      {{"07:17:36", whyFirstFix}},
	"ublox-zed-f9t-ubx_nmea_l5.log":    {{"19:33:34", whyFirstFix}},
	"gps-360.log":                      {{"02:16:25", whyLastCycle}},
	"isync.log":                        {{"13:15:30", whyLastCycle}},
	"neo-m8n.log":                      {{"17:19:48", whyLastCycle}},
	"pharos-360.log":                   {{"02:16:33", whyLastCycle}},
	"ublox-lea-4h.log":                 {{"03:15:18", whyLastCycle}},
	"ublox-lea-4s.log":                 {{"17:55:06", whyLastCycle}},
	"venus634lp.log":                   {{"08:50:38", whyLastCycle}},
	"gp-320fw-2019-03-28.log":          {{"16:45:19", whyNoGLL}},
	"gp-320fw-2019-04-06-overflow.log": {{"23:57:26", whyNoGLL}},
	"bundg_zeus_9.log": {{"09:48:16", "a multiplexed marine log: GGA 094816 is followed by a GLL already naming 094817 " +
		"before the 094817 RMC, which breaks gpsd's cycle; the 094816 RMC, ZDA and GGA are valid and agree"}},
	"ublox-zed-f9p-hp.log": {{"21:19:20", "first UBX epoch (NAV-PVT, -TIMEUTC, -TIMEGPS all valid, gnssFixOK, 3D): gpsd prints its first timed TPV only from the next cycle"}},
	"ublox-aek-4t.log": {
		{"23:11:19", "gpsd timed the first epoch (NAV-SOL GPS week and time) with its built-in GPS-UTC of 18 s before it read the receiver's NAV-TIMEGPS (leap seconds 14, valid, in 2007): 4 s early"},
		{"23:11:23", "the same epoch, timed by its NAV-TIMEUTC (validUTC) and NAV-TIMEGPS (14 leap seconds, valid): gpsd put it at 23:11:19"},
	},
	"tn204.log": {{"23:01:49", "this receiver alternates RMC (even seconds) and GGA+GLL (odd seconds); gpsd drops " +
		"the first odd second, sitegm dates it from the RMC one second earlier"}},
}

// gpsdRolledOver are captures where gpsd's regression run applied a GPS
// week-rollover correction to a correct date (its date floor is later than
// the capture), so its times are exactly 1024 weeks ahead of the receiver's;
// they are compared 1024 weeks back.
var gpsdRolledOver = map[string]bool{"neo-m8n.log": true, "rst39.log": true}

func TestCapturesAgreeWithGpsd(t *testing.T) {
	logs, err := filepath.Glob(filepath.Join(capturesDir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Skipf("no captures in %s", capturesDir)
	}
	seen := map[string]bool{}
	for _, log := range logs {
		name := filepath.Base(log)
		if _, err := os.Stat(log + ".chk"); err != nil {
			continue
		}
		seen[name] = true
		reports, dec := decodeFile(t, log, Options{})
		if dec.Stats.Conflicts != 0 {
			// Every capture is a working receiver: its UBX and NMEA agree.
			for _, r := range reports {
				if r.Conflict != "" {
					t.Errorf("%s %s: %s", name, r.UTCString(), r.Conflict)
				}
			}
		}
		ours := map[int64]bool{} // second -> valid
		for _, r := range reports {
			if r.HasDate {
				k := r.Time.Unix()
				ours[k] = ours[k] || r.Valid
			}
		}
		var shift time.Duration
		if gpsdRolledOver[name] {
			shift = -weeks1024
		}
		theirs := gpsdSeconds(t, log+".chk", shift)
		listed := map[string]string{}
		for _, e := range captureExceptions[name] {
			listed[e.second] = e.why
		}
		var all []int64
		for k := range ours {
			all = append(all, k)
		}
		for k := range theirs {
			if _, ok := ours[k]; !ok {
				all = append(all, k)
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		compared := 0
		for _, k := range all {
			valid, reported := ours[k]
			fix, timed := theirs[k]
			var diff string
			switch {
			case valid && !timed:
				diff = "valid here, gpsd reports no time"
			case valid && !fix:
				diff = "valid here, gpsd has no fix"
			case !valid && fix:
				diff = fmt.Sprintf("gpsd has a fix, here reported=%v valid=false", reported)
			case !reported && timed:
				diff = "gpsd reports a time (no fix), none here"
			}
			sec := time.Unix(k, 0).UTC().Format("15:04:05")
			why, isListed := listed[sec]
			delete(listed, sec)
			compared++
			switch {
			case diff != "" && !isListed:
				t.Errorf("%s %s: %s", name, sec, diff)
			case diff == "" && isListed:
				t.Errorf("%s %s: listed as an exception (%s) but agrees with gpsd", name, sec, why)
			}
		}
		for sec := range listed {
			t.Errorf("%s %s: listed, but neither gpsd nor sitegm reports that second", name, sec)
		}
		if compared == 0 && len(reports) > 0 {
			t.Logf("%s: %d reports, none dated", name, len(reports))
		}
	}
	for name := range captureExceptions {
		if !seen[name] {
			t.Errorf("exception for %s, which is not a capture", name)
		}
	}
}
