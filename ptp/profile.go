// Package ptp is sitegm's PTPv2 grandmaster port, sans-I/O: packets and
// timestamps go in with the time they happened, packets to send come out.
// Sockets, timestamping and timers live in ptp/transport and the daemon.
//
// Wire formats are IEEE 1588-2019 (compatible with 1588-2008 for
// everything here); messages are encoded with facebook/time's ptp/protocol.
package ptp

import "fmt"

// Range is an inclusive range of a log2 interval or a count.
type Range struct{ Min, Max int }

func (r Range) Has(v int) bool { return v >= r.Min && v <= r.Max }

func (r Range) String() string { return fmt.Sprintf("%d..%d", r.Min, r.Max) }

// Profile is a PTP profile's defaults and allowed ranges.
type Profile struct {
	Name                   string
	Domain                 int
	DomainRange            Range
	LogAnnounceInterval    int
	LogAnnounceRange       Range
	LogSyncInterval        int
	LogSyncRange           Range
	LogMinDelayReqInterval int
	LogMinDelayReqRange    Range
	AnnounceReceiptTimeout int
	AnnounceTimeoutRange   Range
}

// Profiles sitegm serves.
//
//   - aes67: AES67-2018 Annex A (the "media profile"): announce every 2 s
//     (0..4), Sync 8 a second (-4..1), Delay_Req at most 8 a second,
//     announce receipt timeout 3 (2..10), domain 0.
//   - smpte2059-2: SMPTE ST 2059-2:2021: domain 127, announce 4 a second
//     (-3..1), Sync 8 a second (-7..-1), Delay_Req no faster than Sync
//     (logSync..logSync+5), timeout 3 (2..10).
//   - default: IEEE 1588-2019 Annex I.3, the delay request-response default
//     profile: announce every 2 s (0..4), Sync every second (-1..1),
//     Delay_Req (0..5), timeout 3 (2..10), domain 0.
var Profiles = map[string]Profile{
	"aes67": {Name: "aes67", Domain: 0, DomainRange: Range{0, 127},
		LogAnnounceInterval: 1, LogAnnounceRange: Range{0, 4},
		LogSyncInterval: -3, LogSyncRange: Range{-4, 1},
		LogMinDelayReqInterval: -3, LogMinDelayReqRange: Range{-3, 5},
		AnnounceReceiptTimeout: 3, AnnounceTimeoutRange: Range{2, 10}},
	"smpte2059-2": {Name: "smpte2059-2", Domain: 127, DomainRange: Range{0, 127},
		LogAnnounceInterval: -2, LogAnnounceRange: Range{-3, 1},
		LogSyncInterval: -3, LogSyncRange: Range{-7, -1},
		LogMinDelayReqInterval: -3, LogMinDelayReqRange: Range{-7, 4},
		AnnounceReceiptTimeout: 3, AnnounceTimeoutRange: Range{2, 10}},
	"default": {Name: "default", Domain: 0, DomainRange: Range{0, 127},
		LogAnnounceInterval: 1, LogAnnounceRange: Range{0, 4},
		LogSyncInterval: 0, LogSyncRange: Range{-1, 1},
		LogMinDelayReqInterval: 0, LogMinDelayReqRange: Range{0, 5},
		AnnounceReceiptTimeout: 3, AnnounceTimeoutRange: Range{2, 10}},
}
