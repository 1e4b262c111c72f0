// Package ptpnet runs PTP ports on Linux: the sockets of the UDP/IPv4 and
// Ethernet transports with their timestamps, the Delay_Req fast path, and
// the port goroutine that drives the sans-I/O ports of ptp and ptp/v1 from
// timers and the wire, on the disciplined clock (clock/timebase).
package ptpnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"golang.org/x/sys/unix"

	"sitegm/hw/neigh"
	"sitegm/hw/nic"
	"sitegm/hw/udpio"
	"sitegm/ptp"
)

// PTP addresses (IEEE 1588-2019 Annex C and E): the primary multicast
// group for UDP/IPv4, and the Ethernet multicast address and ethertype.
var (
	Group   = netip.MustParseAddr("224.0.1.129")
	L2Group = net.HardwareAddr{0x01, 0x1b, 0x19, 0x00, 0x00, 0x00}
)

// Ethertype of PTP over IEEE 802.3 (IEEE 1588-2019 Annex E.2).
const Ethertype = 0x88F7

// txStampWait bounds the wait for a Sync's transmit timestamp.
const txStampWait = 20 * time.Millisecond

// ReplySendBuffer is the send buffer of a socket that answers anyone (NTP,
// Delay_Req): room for about 10,000 replies held by address resolution
// (udpio.Options.SendBuffer). A flood of requests forged from on-link
// addresses that do not exist at 2,000 a second holds 6,000 of them for
// the 3 s ARP takes to give up; the kernel's neighbour table (gc_thresh3,
// 1,024 entries by default) bounds them too.
const ReplySendBuffer = 8 << 20

// Why a message was not sent.
var (
	// ErrRefused: a unicast destination chosen by a request's sender
	// that no reply may go to (udpio.CheckReplyTo).
	ErrRefused = errors.New("reply destination refused")
	// ErrUnresolved: an on-link destination the kernel does not know,
	// beyond the budget for strangers (hw/neigh).
	ErrUnresolved = errors.New("reply destination unresolved")
)

// Full reports whether err says the socket's buffer was full: the message
// was dropped rather than waited for.
func Full(err error) bool { return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS) }

// Msg is a received message for the port goroutine.
type Msg struct {
	Data   []byte
	RX     time.Time // receive stamp (hardware: on the PHC; software: CLOCK_REALTIME)
	RXSoft time.Time // the software stamp besides a hardware one (PTPv1's fallback)
	From   netip.AddrPort
	Event  bool
}

// Counters are what a transport did not send, by reason, and the
// Delay_Req it answered on its own.
type Counters struct {
	Refused, Unsendable, SendFailed, Unresolved, FastReqs atomic.Uint64
}

// Transport is what the port goroutine sends through; v1 selects PTPv1's
// group and Sync socket.
type Transport interface {
	// Send sends one message: a Sync on the timestamping socket, a reply
	// to its destination, anything else to the group. It never waits for
	// buffer space.
	Send(o ptp.Out, v1 bool) error
	// SyncStamp is the transmit timestamp of the Sync just sent.
	SyncStamp(v1 bool) (time.Time, error)
	// Close closes the sockets and waits for the receiving goroutines.
	Close()
}

// FastPath answers Delay_Req in the receiving goroutines, without the port
// goroutine (the hot path: no allocation, one sendmmsg per batch).
type FastPath struct {
	Domain         uint8
	Identity       protocol.PortIdentity
	LogMinDelayReq int8
	// Master says whether the port is MASTER (only a master answers).
	Master *atomic.Bool
	// ToClock carries a receive stamp onto the clock PTP serves.
	ToClock func(rx time.Time) (time.Time, error)
	// Seen is told of each Delay_Req answered (the followers table), or
	// nil.
	Seen func(msg []byte, from netip.Addr, at time.Time)
}

// DSCP marks a port's messages by kind (RFC 2474 codepoints, 0..63):
// event messages (PTPv2 Sync, Delay_Req), general messages (Follow_Up,
// Delay_Resp, Announce, of both versions), and PTPv1's Syncs, which
// Dante marks apart from the rest (docs/dante.md).
type DSCP struct{ Event, General, V1Event int }

// Options of a transport.
type Options struct {
	Interface              string
	EventPort, GeneralPort int
	DSCP                   DSCP
	L2                     bool
	Stamps                 udpio.Stamps // of PTPv2 event messages
	// V1Group is PTPv1's group when Dante's PTPv1 is served on the same
	// ports (IEEE 1588-2008 clause 18), the zero Addr otherwise; V1Stamps
	// its timestamps.
	V1Group  netip.Addr
	V1Stamps udpio.Stamps
	Fast     FastPath
	// Gate bounds replies to on-link strangers (nil: none).
	Gate     *neigh.Gate
	Messages chan<- Msg
	Counters *Counters
}

// ChooseStamps picks the timestamps of a port on iface: hardware when the
// interface has them and its PHC is the disciplined clock (phc, empty when
// that is no PHC) or a PHC slaved to it (slaved reports which), else
// software (mode "auto"); "hardware" insists and "software" never asks.
// stampPHC is the PHC the hardware stamps are taken on. v1 is whether
// PTPv1 is served too: when the NIC's receive filter does not stamp v1
// event messages, v1 uses software stamps for both ends of its exchange.
func ChooseStamps(iface, mode, phc string, slaved func(dev string) bool, v1 bool, log *slog.Logger) (v2s, v1s udpio.Stamps, stampPHC string, err error) {
	ti, tiErr := nic.GetTSInfo(iface)
	own := ""
	if tiErr == nil {
		own = ti.PHCPath()
	}
	onClock := phc != "" && (own == phc || (slaved != nil && own != "" && slaved(own)))
	hwOK := tiErr == nil && ti.Hardware() && onClock
	why := ""
	switch {
	case tiErr != nil:
		why = tiErr.Error()
	case !ti.Hardware():
		why = "the interface has no hardware timestamping"
	case phc == "":
		why = "the disciplined clock is not a PHC"
	case !onClock:
		why = fmt.Sprintf("its PHC %s is neither the disciplined clock %s nor slaved to it", own, phc)
	}
	switch {
	case mode == "hardware" && !hwOK:
		return 0, 0, "", fmt.Errorf("%s: hardware timestamping asked for, but %s", iface, why)
	case mode == "software" || !hwOK:
		if mode == "auto" {
			log.Info("PTP timestamping: software", "event", "ptp_timestamping", "ptp_timestamping", "software", "reason", why)
		}
		return udpio.Software, udpio.Software, "", nil
	}
	filter, err := nic.EnableHardwareStamps(iface)
	if err != nil {
		if mode == "hardware" {
			return 0, 0, "", err
		}
		log.Warn("PTP hardware timestamping failed; using software", "event", "ptp_timestamping", "error", err)
		return udpio.Software, udpio.Software, "", nil
	}
	log.Info("PTP timestamping: hardware", "event", "ptp_timestamping", "ptp_timestamping", "hardware",
		"phc", own, "phc_slaved", own != phc, "rx_filter", filter, "v1_covered", nic.FilterCoversV1(filter))
	if v1 && !nic.FilterCoversV1(filter) {
		// The NIC timestamps v2 event messages only: v1 would get hardware
		// transmit stamps but no receive stamps. Both ends of its exchange
		// must be stamped alike.
		log.Warn("PTPv1 uses software timestamps: the NIC's receive filter does not timestamp v1 event messages",
			"event", "ptpv1_timestamping", "rx_filter", filter)
		return udpio.Hardware, udpio.Software, own, nil
	}
	return udpio.Hardware, udpio.Hardware, own, nil
}

// Open opens the transport o describes and starts its receiving
// goroutines, which stop when Close is called.
func Open(o Options) (Transport, error) {
	if o.L2 {
		return openL2(o)
	}
	return openUDP(o)
}

// settleSleep sleeps d in the kernel on the calling thread (see Settle).
func settleSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
