package ptpnet

import (
	"time"

	"sitegm/ptp"
	v1 "sitegm/ptp/v1"
)

// Status is one PTP port's state for status output.
type Status struct {
	Interface    string `json:"interface"`
	Profile      string `json:"profile"`
	Domain       int    `json:"domain"`
	Transport    string `json:"transport"`
	State        string `json:"state"`
	Timestamping string `json:"timestamping"`
	// PHC is the clock hardware stamps are taken on ("" for software):
	// the disciplined PHC or one slaved to it.
	PHC        string   `json:"phc,omitempty"`
	DelayReqs  uint64   `json:"delay_reqs"`
	Syncs      uint64   `json:"syncs"`
	Announces  uint64   `json:"announces"`
	Management uint64   `json:"management"`
	Malformed  uint64   `json:"malformed"`
	Foreign    []string `json:"foreign_masters"`
	// Master is the measurement of the master a PASSIVE port yields to
	// (a redundant pair's backup watching its primary).
	Master  *ptp.MasterWatch `json:"measured_master,omitempty"`
	ClockID string           `json:"clock_identity"`
	// Hostile or odd traffic, by reason (docs/hostile-input.md).
	Drops      map[string]uint64 `json:"drops,omitempty"`     // received and not taken, by reason
	Refused    uint64            `json:"refused_destination"` // replies not sent: the source was forged (port 0, broadcast ...)
	Unsendable uint64            `json:"unsendable"`          // replies dropped: the send buffer was full
	SendFailed uint64            `json:"send_failed"`         // messages the kernel refused
	Unresolved uint64            `json:"unresolved"`          // replies not sent to on-link strangers beyond their budget (hw/neigh)
	// SyncsLate counts Syncs sent more than two intervals after the one
	// before; SyncGapMaxMS is the longest gap in the last minute.
	SyncsLate    uint64  `json:"syncs_late"`
	SyncGapMaxMS float64 `json:"sync_gap_max_ms"`
	// IngressLatencyNS and EgressLatencyNS are the configured latencies
	// taken off receive stamps and added to transmit stamps.
	IngressLatencyNS int64 `json:"ingress_latency_ns"`
	EgressLatencyNS  int64 `json:"egress_latency_ns"`
	// V1 is the Dante PTPv1 port on the same interface, when served.
	V1 *V1Status `json:"v1,omitempty"`
}

// V1Status is the IEEE 1588-2002 port's state.
type V1Status struct {
	Subdomain    string   `json:"subdomain"`
	State        string   `json:"state"`
	Timestamping string   `json:"timestamping"`
	Syncs        uint64   `json:"syncs"`
	DelayReqs    uint64   `json:"delay_reqs"`
	Malformed    uint64   `json:"malformed"`
	Foreign      []string `json:"foreign_masters"`
	// IntervalClamped and ForeignFull: foreign Syncs whose interval was
	// clamped, and from masters no better than any of a full table.
	IntervalClamped uint64 `json:"interval_clamped"`
	ForeignFull     uint64 `json:"foreign_table_full"`
}

// Down is the status of a port that is not running (its interface is not
// there, or it failed to open).
func Down(iface, profile string, domain int, transport string) Status {
	return Status{Interface: iface, Profile: profile, Domain: domain, Transport: transport, State: "DOWN"}
}

// publish stores the ports' state for Status (port goroutine).
func (s *Server) publish(port *ptp.Port, port1 *v1.Port, now time.Time) {
	c := s.cfg
	st := port.Stats
	var malformed uint64
	drops := map[string]uint64{}
	for i, n := range st.Drops {
		if n == 0 {
			continue
		}
		drops[ptp.Drop(i).String()] = n
		if ptp.Drop(i).Hostile() {
			malformed += n
		}
	}
	if st.Clamped > 0 {
		drops["interval_clamped"] = st.Clamped
	}
	p := &Status{Interface: c.Port.Interface, Profile: c.Port.Profile, Domain: int(c.Port.Domain), Transport: c.Transport,
		State: port.State().String(), Timestamping: s.stamps.String(), PHC: s.stampPHC, DelayReqs: st.DelayReqs + s.cnt.FastReqs.Load(),
		Syncs: st.Syncs, Announces: st.Announces, Management: st.Management, Malformed: malformed,
		ClockID: c.Port.Identity.ClockIdentity.String(), Drops: drops,
		Refused: s.cnt.Refused.Load(), Unsendable: s.cnt.Unsendable.Load(), SendFailed: s.cnt.SendFailed.Load(),
		Unresolved: s.cnt.Unresolved.Load(), SyncsLate: s.gaps.late.Load(), SyncGapMaxMS: float64(s.gaps.maxUS.Load()) / 1000,
		IngressLatencyNS: c.IngressLatency.Nanoseconds(), EgressLatencyNS: c.EgressLatency.Nanoseconds()}
	for _, f := range port.Foreign(now) {
		p.Foreign = append(p.Foreign, f.Describe())
	}
	if w, ok := port.Watch(); ok {
		p.Master = &w
	}
	if port1 != nil {
		st := port1.Stats
		p.V1 = &V1Status{Subdomain: c.V1.Subdomain, State: port1.State().String(), Timestamping: s.v1Stamps.String(),
			Syncs: st.Syncs, DelayReqs: st.DelayReqs, Malformed: st.Malformed,
			IntervalClamped: st.Clamped, ForeignFull: st.ForeignFull}
		for _, f := range port1.Foreign(now) {
			p.V1.Foreign = append(p.V1.Foreign, f.Describe())
		}
	}
	s.status.Store(p)
}
