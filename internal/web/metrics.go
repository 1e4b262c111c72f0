package web

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"sitegm/internal/status"
)

// collector turns the latest status document into Prometheus metrics at
// each scrape: nothing on the serving paths is touched (a scrape reads
// the snapshot the daemon published, at most a second old), and every
// series of one scrape comes from the same instant.
//
// Names follow Prometheus conventions: a sitegm_ prefix, base units
// (seconds, ratios), _total for counters, one-hot state gauges with a
// state label.
type collector struct {
	last func() *status.Status
	d    map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	labels     []string
}

var metricDefs = []metricDef{
	{"sitegm_up", "1 while sitegm publishes its status (0: no status yet).", nil},
	{"sitegm_uptime_seconds", "Seconds since sitegm started.", nil},
	{"sitegm_clock_state", "The disciplined clock's state (1 for the current one).", []string{"state"}},
	{"sitegm_clock_class", "PTP clockClass advertised (6 locked, 7 holdover, 52 past holdover or on NTP, 248 free-running).", nil},
	{"sitegm_clock_reference", "What leads the clock (1 for the current one): GNSS, or the NTP upstreams.", []string{"reference"}},
	{"sitegm_clock_reference_changes_total", "Changes of the reference since the start.", nil},
	{"sitegm_clock_offset_seconds", "The servo's estimate of the clock minus the reference.", nil},
	{"sitegm_clock_estimated_error_seconds", "The clock's estimated error bound (what NTP's root dispersion and PTP's clockAccuracy say).", nil},
	{"sitegm_clock_frequency_offset_ratio", "The frequency correction applied to the clock (1e-9 is 1 ppb).", nil},
	{"sitegm_clock_measurement_noise_seconds", "The reference's measured noise (PPS jitter).", nil},
	{"sitegm_clock_holdover_seconds", "Seconds spent in the current holdover (0 when not in holdover).", nil},
	{"sitegm_clock_holdover_remaining_seconds", "Seconds left before the holdover limit (0 when not in holdover).", nil},
	{"sitegm_leap_table_expiry_seconds", "Seconds until the leap second table expires (negative once past: update tzdata or gnss.leapfile).", []string{"source"}},
	{"sitegm_leap_known", "1 while TAI-UTC is known (a current table or the receiver's count): PTP time may be traceable.", nil},
	{"sitegm_slave_phc_state", "A slave PHC's state (1 for the current one).", []string{"device", "state"}},
	{"sitegm_slave_phc_offset_seconds", "A slave PHC minus the disciplined PHC, as last estimated.", []string{"device"}},
	{"sitegm_slave_phc_bound_seconds", "The error bound of carrying a stamp on a slave PHC onto the disciplined clock.", []string{"device"}},
	{"sitegm_slave_phc_frequency_offset_ratio", "A slave PHC's frequency correction (1e-9 is 1 ppb).", []string{"device"}},
	{"sitegm_slave_phc_steps_total", "Steps of a slave PHC (before its lock, and after someone else stepped it).", []string{"device"}},
	{"sitegm_slave_phc_failures_total", "Failed readings or adjustments of a slave PHC.", []string{"device"}},
	{"sitegm_gnss_fix", "1 while the receiver reports a valid fix.", nil},
	{"sitegm_gnss_satellites", "Satellites the receiver uses (-1 unknown).", nil},
	{"sitegm_gnss_last_report_age_seconds", "Seconds since the receiver's last time report (-1 never).", nil},
	{"sitegm_pps_ok", "1 while PPS edges arrive.", nil},
	{"sitegm_gnss_antenna", "The receiver's antenna status (1 for the current one; unknown when it does not say).", []string{"status"}},
	{"sitegm_gnss_jamming", "The receiver's interference verdict (1 for the current one).", []string{"status"}},
	{"sitegm_gnss_jamming_indicator", "The receiver's CW jamming indicator, 0-255 (-1 unknown).", nil},
	{"sitegm_gnss_spoofing", "The receiver's spoofing detector (1 for the current state).", []string{"status"}},
	{"sitegm_gnss_time_accuracy_seconds", "The receiver's own time accuracy estimate (0 unknown).", nil},
	{"sitegm_gnss_distrusted", "1 while the receiver's time is not followed (spoofing, its accuracy).", nil},
	{"sitegm_gnss_checksum_errors_total", "Sentences and frames with a bad checksum.", nil},
	{"sitegm_pps_delay_seconds", "Configured lateness of the pulse taken off every edge (gnss.cable_delay, gnss.pps_offset).", []string{"kind"}},
	{"sitegm_ptp_port_state", "A PTP port's state (1 for the current one).", []string{"interface", "version", "state"}},
	{"sitegm_ptp_delay_requests_total", "Delay_Req answered.", []string{"interface", "version"}},
	{"sitegm_ptp_syncs_total", "Sync messages sent.", []string{"interface", "version"}},
	{"sitegm_ptp_syncs_late_total", "Syncs sent more than two intervals after the one before.", []string{"interface"}},
	{"sitegm_ptp_master_offset_seconds", "A PASSIVE port's measurement of the master it yields to: this clock minus the master's.", []string{"interface"}},
	{"sitegm_ptp_master_limit_seconds", "The offset beyond which one of the two clocks is wrong: both announced accuracies and the path delay (0: not judged).", []string{"interface"}},
	{"sitegm_ptp_master_off", "1 while this clock and the master it yields to differ by more than the limit.", []string{"interface"}},
	{"sitegm_ptp_followers", "PTP followers that sent a Delay_Req in the last 20 minutes.", []string{"interface", "version"}},
	{"sitegm_ptp_latency_seconds", "Configured latency taken off receive stamps (ingress) and added to transmit stamps (egress).", []string{"interface", "direction"}},
	{"sitegm_ntp_requests_total", "NTP requests received.", []string{"interface"}},
	{"sitegm_nts_requests_total", "NTS requests (RFC 8915) by outcome: answered, nak (cookie or authenticator refused), bad (dropped).", []string{"interface", "result"}},
	{"sitegm_nts_ke_total", "NTS-KE connections by outcome: session (cookies handed out), refused (an Error record), failed (TLS, timeout), shed (closed at accept).", []string{"interface", "result"}},
	{"sitegm_ntp_replies_total", "NTP replies sent.", []string{"interface"}},
	{"sitegm_ntp_kod_total", "Kiss-o'-Death (RATE) replies sent.", []string{"interface"}},
	{"sitegm_ntp_rate_limited_total", "NTP requests dropped by rate limiting.", []string{"interface"}},
	{"sitegm_ntp_interleaved_total", "NTP replies in interleaved mode.", []string{"interface"}},
	{"sitegm_ntp_clients", "NTP clients seen in the last 20 minutes.", []string{"interface"}},
	{"sitegm_ntp_send_lag_seconds", "Measured lag of the NTP send path, added to each reply's transmit time.", []string{"interface"}},
	{"sitegm_followers_evicted_total", "Follower table entries that made room for newer ones.", nil},
	{"sitegm_follower_expected_lost", "1 for each expected follower silent now.", []string{"follower"}},
	{"sitegm_rejected_total", "Input turned away or unanswerable, by kind, interface and reason.", []string{"kind", "interface", "reason"}},
	{"sitegm_monitor_reachable", "1 while the monitored host answers NTP.", []string{"name"}},
	{"sitegm_monitor_offset_seconds", "The monitored host's clock minus sitegm's (least-delay of the last 4 answers).", []string{"name"}},
	{"sitegm_monitor_delay_seconds", "Round-trip delay to the monitored host.", []string{"name"}},
	{"sitegm_monitor_stratum", "The monitored host's NTP stratum.", []string{"name"}},
	{"sitegm_monitor_off", "1 while the monitored host's offset is beyond its warn threshold.", []string{"name"}},
	{"sitegm_monitor_limit_seconds", "The offset beyond which the monitored host is off: its warn, or for a peer grandmaster both clocks' error bounds and half the delay.", []string{"name"}},
	{"sitegm_monitor_polls_total", "Polls of the monitored host.", []string{"name"}},
	{"sitegm_monitor_answers_total", "Answers from the monitored host.", []string{"name"}},
	{"sitegm_upstream_state", "An NTP upstream's state in the selection (1 for the current one).", []string{"server", "state"}},
	{"sitegm_upstream_offset_seconds", "An NTP upstream's time minus the disciplined clock.", []string{"server"}},
	{"sitegm_upstream_root_distance_seconds", "The half-width of an NTP upstream's correctness interval.", []string{"server"}},
	{"sitegm_upstream_reach", "The upstream's reach register (the last 8 polls, one bit each).", []string{"server"}},
	{"sitegm_ntp_check_offset_seconds", "The selected upstreams' combined time minus the disciplined clock.", nil},
	{"sitegm_ntp_check_disagree", "1 while the clock GNSS disciplines disagrees with the NTP upstreams.", nil},
}

func newCollector(last func() *status.Status) *collector {
	c := &collector{last: last, d: map[string]*prometheus.Desc{}}
	for _, m := range metricDefs {
		c.d[m.name] = prometheus.NewDesc(m.name, m.help, m.labels, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.d[name], prometheus.GaugeValue, v, labels...)
	}
	ctr := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.d[name], prometheus.CounterValue, float64(v), labels...)
	}
	oneHot := func(name, cur string, all []string, labels ...string) {
		for _, s := range all {
			g(name, b2f(s == cur), append(labels, s)...)
		}
	}
	s := c.last()
	if s == nil {
		g("sitegm_up", 0)
		return
	}
	g("sitegm_up", 1)
	g("sitegm_uptime_seconds", s.Uptime)
	k := s.Clock
	oneHot("sitegm_clock_state", k.State, []string{"FREERUN", "ACQUIRING", "LOCKED", "HOLDOVER"})
	g("sitegm_clock_class", float64(k.ClockClass))
	if k.Reference != "" {
		oneHot("sitegm_clock_reference", k.Reference, []string{"GNSS", "NTP"})
	}
	ctr("sitegm_clock_reference_changes_total", k.ReferenceChanges)
	g("sitegm_clock_offset_seconds", float64(k.OffsetNS)/1e9)
	if k.EstErrorNS >= 0 {
		g("sitegm_clock_estimated_error_seconds", float64(k.EstErrorNS)/1e9)
	}
	g("sitegm_clock_frequency_offset_ratio", k.FrequencyPPB*1e-9)
	g("sitegm_clock_measurement_noise_seconds", float64(k.MeasNoiseNS)/1e9)
	g("sitegm_clock_holdover_seconds", k.HoldoverElapsedS)
	g("sitegm_clock_holdover_remaining_seconds", k.HoldoverRemainingS)
	if s.Leap.Expires != "" {
		g("sitegm_leap_table_expiry_seconds", s.Leap.ExpiresInS, s.Leap.Source)
	}
	g("sitegm_leap_known", b2f(s.Leap.Known))
	for _, sp := range k.SlavePHCs {
		oneHot("sitegm_slave_phc_state", sp.State, []string{"FREERUN", "ACQUIRING", "LOCKED", "FAULT"}, sp.Device)
		g("sitegm_slave_phc_offset_seconds", float64(sp.OffsetNS)/1e9, sp.Device)
		g("sitegm_slave_phc_bound_seconds", float64(sp.BoundNS)/1e9, sp.Device)
		g("sitegm_slave_phc_frequency_offset_ratio", sp.FrequencyPPB*1e-9, sp.Device)
		ctr("sitegm_slave_phc_steps_total", sp.Steps, sp.Device)
		ctr("sitegm_slave_phc_failures_total", sp.Failures, sp.Device)
	}
	n := s.GNSS
	g("sitegm_gnss_fix", b2f(n.State == "fix"))
	g("sitegm_gnss_satellites", float64(n.Satellites))
	g("sitegm_gnss_last_report_age_seconds", n.LastReportAgeS)
	g("sitegm_pps_ok", b2f(n.PPSOK))
	oneHot("sitegm_gnss_antenna", n.Antenna, []string{"unknown", "ok", "short", "open"})
	oneHot("sitegm_gnss_jamming", n.Jamming, []string{"unknown", "ok", "warning", "critical"})
	g("sitegm_gnss_jamming_indicator", float64(n.JammingIndicator))
	oneHot("sitegm_gnss_spoofing", n.Spoofing, []string{"unknown", "none", "indicated", "affirmed"})
	g("sitegm_gnss_time_accuracy_seconds", float64(n.TimeAccuracyNS)/1e9)
	g("sitegm_gnss_distrusted", b2f(n.Distrusted != ""))
	ctr("sitegm_gnss_checksum_errors_total", n.ChecksumErrors)
	g("sitegm_pps_delay_seconds", float64(n.CableDelayNS)/1e9, "cable")
	g("sitegm_pps_delay_seconds", float64(n.PPSOffsetNS)/1e9, "offset")
	counts := map[string]int{}
	for _, f := range s.FollowerCounts {
		counts[f.Kind+"/"+f.Interface] = f.Active
	}
	for _, p := range s.PTP {
		oneHot("sitegm_ptp_port_state", p.State, []string{"DOWN", "LISTENING", "MASTER", "PASSIVE"}, p.Interface, "2")
		ctr("sitegm_ptp_delay_requests_total", p.DelayReqs, p.Interface, "2")
		ctr("sitegm_ptp_syncs_total", p.Syncs, p.Interface, "2")
		ctr("sitegm_ptp_syncs_late_total", p.SyncsLate, p.Interface)
		g("sitegm_ptp_followers", float64(counts["ptp/"+p.Interface]), p.Interface, "2")
		g("sitegm_ptp_latency_seconds", float64(p.IngressLatencyNS)/1e9, p.Interface, "ingress")
		g("sitegm_ptp_latency_seconds", float64(p.EgressLatencyNS)/1e9, p.Interface, "egress")
		if m := p.Master; m != nil {
			g("sitegm_ptp_master_offset_seconds", float64(m.OffsetNS)/1e9, p.Interface)
			g("sitegm_ptp_master_limit_seconds", float64(m.LimitNS)/1e9, p.Interface)
			g("sitegm_ptp_master_off", b2f(m.Off), p.Interface)
		}
		if v := p.V1; v != nil {
			oneHot("sitegm_ptp_port_state", v.State, []string{"DOWN", "LISTENING", "MASTER", "PASSIVE"}, p.Interface, "1")
			ctr("sitegm_ptp_delay_requests_total", v.DelayReqs, p.Interface, "1")
			ctr("sitegm_ptp_syncs_total", v.Syncs, p.Interface, "1")
			g("sitegm_ptp_followers", float64(counts["ptpv1/"+p.Interface]), p.Interface, "1")
		}
	}
	for _, t := range s.NTP {
		ctr("sitegm_ntp_requests_total", t.Requests, t.Interface)
		ctr("sitegm_ntp_replies_total", t.Replies, t.Interface)
		ctr("sitegm_ntp_kod_total", t.KoD, t.Interface)
		ctr("sitegm_ntp_rate_limited_total", t.RateDropped, t.Interface)
		ctr("sitegm_ntp_interleaved_total", t.Interleaved, t.Interface)
		g("sitegm_ntp_clients", float64(counts["ntp/"+t.Interface]), t.Interface)
		g("sitegm_ntp_send_lag_seconds", float64(t.SendLagNS)/1e9, t.Interface)
		if t.NTS {
			ctr("sitegm_nts_requests_total", t.NTSAnswered, t.Interface, "answered")
			ctr("sitegm_nts_requests_total", t.NTSNAKs, t.Interface, "nak")
			ctr("sitegm_nts_requests_total", t.NTSBad, t.Interface, "bad")
			ctr("sitegm_nts_ke_total", t.KESessions, t.Interface, "session")
			ctr("sitegm_nts_ke_total", t.KERefused, t.Interface, "refused")
			ctr("sitegm_nts_ke_total", t.KEFailed, t.Interface, "failed")
			ctr("sitegm_nts_ke_total", t.KEShed, t.Interface, "shed")
		}
	}
	ctr("sitegm_followers_evicted_total", s.FollowersEvicted)
	for _, l := range s.LostFollowers {
		g("sitegm_follower_expected_lost", 1, l)
	}
	for key, v := range s.Rejected {
		f := strings.SplitN(key, "/", 3)
		for len(f) < 3 {
			f = append(f, "")
		}
		ctr("sitegm_rejected_total", v, f[0], f[1], f[2])
	}
	for _, u := range s.Upstreams {
		oneHot("sitegm_upstream_state", u.State, []string{"selected", "survivor", "falseticker", "candidate", "unusable"}, u.Name)
		g("sitegm_upstream_reach", float64(u.Reach), u.Name)
		if u.State != "unusable" {
			g("sitegm_upstream_offset_seconds", float64(u.OffsetNS)/1e9, u.Name)
			g("sitegm_upstream_root_distance_seconds", float64(u.RootDistNS)/1e9, u.Name)
		}
	}
	if sel := s.Selection; sel != nil {
		g("sitegm_ntp_check_offset_seconds", float64(sel.OffsetNS)/1e9)
		g("sitegm_ntp_check_disagree", b2f(sel.Disagree))
	}
	for _, m := range s.Monitors {
		g("sitegm_monitor_reachable", b2f(m.Reachable), m.Name)
		ctr("sitegm_monitor_polls_total", m.Polls, m.Name)
		ctr("sitegm_monitor_answers_total", m.Answers, m.Name)
		g("sitegm_monitor_off", b2f(m.Off), m.Name)
		if m.Answers > 0 {
			g("sitegm_monitor_offset_seconds", float64(m.OffsetNS)/1e9, m.Name)
			g("sitegm_monitor_delay_seconds", float64(m.DelayNS)/1e9, m.Name)
			g("sitegm_monitor_stratum", float64(m.Stratum), m.Name)
			g("sitegm_monitor_limit_seconds", float64(m.WarnNS)/1e9, m.Name)
		}
	}
}
