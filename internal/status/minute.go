package status

import (
	"log/slog"

	"sitegm/event"
)

// Minute sums up, once a minute, what would otherwise be a line a packet:
// input turned away (input_rejected, docs/hostile-input.md) and NTP
// clients rate limited (ntp_rate_limited). A site engineer sees a
// misbehaving camera, or a flood, in one line.
type Minute struct {
	rejected RejectedBook
	rateSeen [2]uint64 // NTP KoDs and rate drops already reported
}

// Events compares the document s with the one of the last call.
func (m *Minute) Events(s *Status) []event.Event {
	var evs event.List
	if counts, total := m.rejected.Minute(Rejected(s)); total > 0 {
		evs.Emit(slog.LevelWarn, "input_rejected", "input rejected or unanswerable in the last minute (docs/hostile-input.md)",
			"total", total, "counts", counts)
	}
	var kod, dropped uint64
	for _, n := range s.NTP {
		kod += n.KoD
		dropped += n.RateDropped
	}
	if kod < m.rateSeen[0] || dropped < m.rateSeen[1] {
		m.rateSeen = [2]uint64{} // a server restarted: counters began again
	}
	dk, dd := kod-m.rateSeen[0], dropped-m.rateSeen[1]
	m.rateSeen = [2]uint64{kod, dropped}
	if dk+dd > 0 {
		evs.Emit(slog.LevelWarn, "ntp_rate_limited", "NTP clients rate limited in the last minute", "ntp_kod", dk, "ntp_rate_dropped", dd)
	}
	return evs.Take()
}
