package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"sitegm/hw/gnss"
)

// reportJSON is the stable JSON shape of one time report.
type reportJSON struct {
	Time     *string `json:"time"` // RFC 3339 UTC with fraction; null without a date
	Valid    bool    `json:"valid"`
	Fix      string  `json:"fix"`
	Sats     *int    `json:"sats"` // null when unknown
	InView   *int    `json:"in_view"`
	Talker   string  `json:"talker"`
	Sentence string  `json:"sentence"`
	DateFrom string  `json:"date_from,omitempty"`
	Rollover bool    `json:"rollover,omitempty"`
}

func toJSON(r gnss.Report) reportJSON {
	j := reportJSON{Valid: r.Valid, Fix: r.Fix.String(), Talker: r.Talker, Sentence: r.Sentence,
		DateFrom: r.DateFrom, Rollover: r.Rollover}
	if r.HasDate {
		s := r.UTCString()
		j.Time = &s
	}
	if r.Sats >= 0 {
		n := r.Sats
		j.Sats = &n
	}
	if r.InView >= 0 {
		n := r.InView
		j.InView = &n
	}
	return j
}

func cmdGNSSDecode(args []string) int {
	fs := flag.NewFlagSet("gnss decode", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object per time report")
	floor := fs.String("date-floor", "", "correct dates before YYYY-MM-DD by 1024 weeks (GPS week rollover); default none, as captures are often old")
	all := fs.Bool("all", false, "also print UBX time messages and TXT sentences")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sitegm gnss decode [--json] [--all] [--date-floor YYYY-MM-DD] FILE|-")
		return 2
	}
	var opt gnss.Options
	if *floor != "" {
		t, err := time.Parse("2006-01-02", *floor)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sitegm: --date-floor: %v\n", err)
			return 2
		}
		opt.DateFloor = t
	}
	var in io.Reader = os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sitegm: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	d := gnss.NewDecoder(opt)
	print := func(evs []gnss.Event) {
		for _, ev := range evs {
			switch e := ev.(type) {
			case gnss.Report:
				if *asJSON {
					enc.Encode(toJSON(e))
				} else {
					fmt.Fprintln(out, formatReport(e))
				}
			default:
				if !*all {
					continue
				}
				if *asJSON {
					enc.Encode(map[string]any{"type": fmt.Sprintf("%T", e)[len("gnss."):], "data": e})
				} else {
					fmt.Fprintf(out, "%T %+v\n", e, e)
				}
			}
		}
	}
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		print(d.Feed(buf[:n], time.Time{}))
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sitegm: read: %v\n", err)
			return 1
		}
	}
	print(d.Flush(time.Time{}))
	out.Flush()
	writeSummary(os.Stderr, d)
	return 0
}

func formatReport(r gnss.Report) string {
	t := r.UTCString()
	if t == "" {
		t = "(no date)"
	}
	v := "invalid"
	if r.Valid {
		v = "valid"
	}
	s := fmt.Sprintf("%s %s fix=%s sats=%s talker=%s sentence=%s", t, v, r.Fix, optInt(r.Sats), r.Talker, r.Sentence)
	if r.DateFrom != "" {
		s += " date=" + quoteIfSpace(r.DateFrom)
	}
	if r.Rollover {
		s += " rollover=corrected"
	}
	return s
}

func optInt(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func quoteIfSpace(s string) string {
	for _, c := range s {
		if c == ' ' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

func writeSummary(w io.Writer, d *gnss.Decoder) {
	fs := d.FramerStats()
	st := d.Stats
	fmt.Fprintf(w, "bytes %d, sentences %d, UBX frames %d, SiRF frames %d, comment lines %d\n",
		fs.Bytes, fs.NMEA, fs.UBX, fs.SiRF, fs.CommentLines)
	fmt.Fprintf(w, "time reports %d (valid %d, without date %d, rollover-corrected %d), late sentences %d\n",
		st.Reports, st.ValidReports, st.NoDate, st.Rollovers, st.Late)
	fmt.Fprintf(w, "checksum errors %d, bytes skipped %d", fs.Rejects[gnss.RejectNMEAChecksum]+fs.Rejects[gnss.RejectUBXChecksum], fs.Skipped)
	for r := gnss.Reject(0); r.String() != "unknown"; r++ {
		if n := fs.Rejects[r]; n > 0 {
			fmt.Fprintf(w, ", %s %d", r, n)
		}
	}
	fmt.Fprintf(w, "\nbad time fields %d, empty time %d, other talkers %d\n", st.BadTime, st.NoTime, st.OtherTalker)
	fmt.Fprintf(w, "sentences by type:%s\n", sortedCounts(st.ByName))
	if len(st.UBXByID) > 0 {
		fmt.Fprintf(w, "UBX by class-id:%s\n", sortedCounts(st.UBXByID))
	}
}

func sortedCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%d", k, m[k])
	}
	return s
}
