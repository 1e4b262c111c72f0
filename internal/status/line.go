package status

import (
	"fmt"
	"time"
)

// LineAttrs is the periodic status line's attributes (logfmt on stderr,
// fields in the journal), from the same document `sitegm status --json`
// prints: one source for both. An estimated error that is not known yet
// is left out, not written as a number.
func LineAttrs(s *Status) []any {
	g, c := s.GNSS, s.Clock
	age := "never"
	if g.LastReportAgeS >= 0 {
		age = (time.Duration(g.LastReportAgeS * float64(time.Second))).Round(100 * time.Millisecond).String()
	}
	a := []any{"event", "status",
		"gnss_state", g.State, "gnss_fix", g.Fix, "gnss_sats", g.Satellites, "gnss_time", g.LastTime,
		"gnss_last_report_age", age, "gnss_reports", g.Reports, "gnss_valid_reports", g.ValidReports,
		"gnss_sentences", g.Sentences, "gnss_rejected_bytes", g.RejectedBytes, "gnss_checksum_errors", g.ChecksumErrors,
		"pps_ok", g.PPSOK, "pps_edges", g.PPSEdges,
		"gnss_antenna", g.Antenna, "gnss_jamming", g.Jamming, "gnss_jamming_indicator", g.JammingIndicator, "gnss_spoofing", g.Spoofing,
		"gnss_time_accuracy_ns", g.TimeAccuracyNS,
		"clock_state", c.State, "clock_class", c.ClockClass, "servo_state", c.ServoState, "reference", c.Reference,
		"offset_ns", c.OffsetNS}
	if c.EstErrorNS >= 0 {
		a = append(a, "est_error_ns", c.EstErrorNS)
	}
	a = append(a, "freq_ppb", c.FrequencyPPB, "meas_noise_ns", c.MeasNoiseNS,
		"paired", g.Paired, "nmea_latency", (time.Duration(g.NMEALatencyMS) * time.Millisecond).String())
	for _, p := range s.PTP {
		v := fmt.Sprintf("%s/%d/%s/dreq=%d", p.Profile, p.Domain, p.State, p.DelayReqs)
		if p.V1 != nil {
			v += fmt.Sprintf(" v1=%s/%s/dreq=%d", p.V1.Subdomain, p.V1.State, p.V1.DelayReqs)
		}
		a = append(a, "ptp_"+p.Interface, v)
	}
	for _, n := range s.NTP {
		a = append(a, "ntp_"+n.Interface, fmt.Sprintf("%s/req=%d/kod=%d/xleave=%d", n.State, n.Requests, n.KoD, n.Interleaved))
	}
	for _, u := range s.Upstreams {
		a = append(a, "upstream_"+u.Name, fmt.Sprintf("%s/reach=%03o/offset=%v/delay=%v/dist=%v", u.State, u.Reach,
			time.Duration(u.OffsetNS), time.Duration(u.DelayNS), time.Duration(u.RootDistNS)))
	}
	if sel := s.Selection; sel != nil {
		a = append(a, "upstreams_selection", fmt.Sprintf("offset=%v/dist=%v/survivors=%d/best=%s", time.Duration(sel.OffsetNS),
			time.Duration(sel.RootDistNS), sel.Survivors, sel.Best))
	}
	if c.MinusHostNS != 0 {
		a = append(a, "clock_minus_host_ns", c.MinusHostNS)
	}
	if sv := g.Survey; sv != nil {
		a = append(a, "gnss_survey", fmt.Sprintf("active=%v valid=%v %s ±%.3fm", sv.Active, sv.Valid,
			(time.Duration(sv.DurationS)*time.Second).String(), sv.MeanAccM))
	}
	if c.State == "HOLDOVER" {
		sec := func(s float64) string { return time.Duration(s * float64(time.Second)).Round(time.Second).String() }
		a = append(a, "holdover_elapsed", sec(c.HoldoverElapsedS), "holdover_remaining", sec(c.HoldoverRemainingS))
	}
	return a
}
