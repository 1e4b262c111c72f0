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
	// DSCPEvent and DSCPGeneral mark event and general messages (RFC 2474
	// codepoints) as the profile's networks expect.
	DSCPEvent, DSCPGeneral int
}

// DiffServ codepoints (RFC 2474, RFC 3246, RFC 4594).
const (
	DSCPExpedited = 46 // EF: low loss, latency and jitter
	DSCPCS7       = 56 // class selector 7: network control, above EF
)

// Dante's marking of its own PTPv1 (Audinate, "How does Dante use DSCP /
// Diffserv priority values": time-critical PTP events CS7, audio and the
// rest of PTP EF): what a Dante network's switches are set up to queue.
const (
	DanteDSCPEvent   = DSCPCS7
	DanteDSCPGeneral = DSCPExpedited
)

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
//
// Marking: AES67-2018 gives clock traffic (PTP) EF, 46, above the media's
// AF41; both kinds of message are clock traffic. ST 2059-2 names no
// codepoint; SMPTE ST 2110 networks follow AES67's classes, EF. IEEE 1588
// names none: the default profile uses EF too, which any switch set up
// for voice (RFC 4594) queues first.
var Profiles = map[string]Profile{
	"aes67": {Name: "aes67", Domain: 0, DomainRange: Range{0, 127},
		LogAnnounceInterval: 1, LogAnnounceRange: Range{0, 4},
		LogSyncInterval: -3, LogSyncRange: Range{-4, 1},
		LogMinDelayReqInterval: -3, LogMinDelayReqRange: Range{-3, 5},
		AnnounceReceiptTimeout: 3, AnnounceTimeoutRange: Range{2, 10},
		DSCPEvent: DSCPExpedited, DSCPGeneral: DSCPExpedited},
	"smpte2059-2": {Name: "smpte2059-2", Domain: 127, DomainRange: Range{0, 127},
		LogAnnounceInterval: -2, LogAnnounceRange: Range{-3, 1},
		LogSyncInterval: -3, LogSyncRange: Range{-7, -1},
		LogMinDelayReqInterval: -3, LogMinDelayReqRange: Range{-7, 4},
		AnnounceReceiptTimeout: 3, AnnounceTimeoutRange: Range{2, 10},
		DSCPEvent: DSCPExpedited, DSCPGeneral: DSCPExpedited},
	"default": {Name: "default", Domain: 0, DomainRange: Range{0, 127},
		LogAnnounceInterval: 1, LogAnnounceRange: Range{0, 4},
		LogSyncInterval: 0, LogSyncRange: Range{-1, 1},
		LogMinDelayReqInterval: 0, LogMinDelayReqRange: Range{0, 5},
		AnnounceReceiptTimeout: 3, AnnounceTimeoutRange: Range{2, 10},
		DSCPEvent: DSCPExpedited, DSCPGeneral: DSCPExpedited},
}
