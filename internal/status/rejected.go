package status

import (
	"fmt"
	"slices"
	"strings"
)

// Rejected lists, from a status snapshot, every counter of input
// sitegm turned away or could not answer, by "kind/interface/reason":
// the figures docs/hostile-input.md describes, totals since each port
// opened. Rate limiting has its own minute summary (ntp_rate_limited).
func Rejected(s *Status) map[string]uint64 {
	m := map[string]uint64{}
	add := func(key string, v uint64) {
		if v > 0 {
			m[key] += v
		}
	}
	for _, p := range s.PTP {
		k := "ptp/" + p.Interface + "/"
		for reason, v := range p.Drops {
			if reason != "own" && reason != "state" && reason != "domain" && reason != "type" {
				add(k+reason, v)
			}
		}
		add(k+"refused_destination", p.Refused)
		add(k+"unresolved", p.Unresolved)
		add(k+"unsendable", p.Unsendable)
		add(k+"send_failed", p.SendFailed)
		add(k+"syncs_late", p.SyncsLate)
		if p.V1 != nil {
			k := "ptpv1/" + p.Interface + "/"
			add(k+"malformed", p.V1.Malformed)
			add(k+"interval_clamped", p.V1.IntervalClamped)
			add(k+"foreign_table_full", p.V1.ForeignFull)
		}
	}
	for _, n := range s.NTP {
		k := "ntp/" + n.Interface + "/"
		add(k+"malformed", n.Malformed)
		add(k+"bad_version", n.BadVersion)
		add(k+"refused_destination", n.Refused)
		add(k+"unresolved", n.Unresolved)
		add(k+"unsendable", n.Unsendable)
		add(k+"send_failed", n.SendFailed)
	}
	add("gnss/receiver/implausible_date", s.GNSS.ImplausibleDates)
	add("gnss/receiver/checksum_errors", s.GNSS.ChecksumErrors)
	return m
}

// RejectedBook turns the counters into one summary a minute.
type RejectedBook struct{ seen map[string]uint64 }

// Minute returns what grew since the last call, "key=delta" sorted, and
// the sum; a counter that went down belongs to a port that was re-opened
// and counts from zero.
func (b *RejectedBook) Minute(now map[string]uint64) (string, uint64) {
	var parts []string
	var total uint64
	for k, v := range now {
		d := v
		if last, ok := b.seen[k]; ok && v >= last {
			d = v - last
		}
		if d > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, d))
			total += d
		}
	}
	b.seen = now
	slices.Sort(parts)
	return strings.Join(parts, " "), total
}
