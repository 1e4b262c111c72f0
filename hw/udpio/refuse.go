package udpio

import (
	"net/netip"
)

// Refusal names why a reply is not sent to a destination the request's
// sender chose; the empty string accepts it.
type Refusal string

// Reasons a reply destination is refused.
const (
	RefuseNone       Refusal = ""
	RefusePortZero   Refusal = "port 0"      // no socket can be there (and sendmsg says EINVAL)
	RefuseNotUnicast Refusal = "not unicast" // 0.0.0.0, multicast, broadcast, reserved: a forged source
	RefuseLoopback   Refusal = "loopback"    // 127/8 off the loopback interface: a forged source
)

// CheckReplyTo decides whether a reply may go to the address and port a
// request came from. Every field of an IPv4 header is the sender's to
// choose: a request "from" a multicast or broadcast address asks for an
// amplified reply to the whole link, one from port 0 for a reply the
// kernel refuses. loopbackOK is set on the loopback interface itself.
func CheckReplyTo(to netip.AddrPort, loopbackOK bool) Refusal {
	a := to.Addr()
	switch {
	case to.Port() == 0:
		return RefusePortZero
	case !a.Is4(), a.IsUnspecified(), a.IsMulticast(), a.As4()[0] >= 240:
		// 240/4 is reserved (RFC 1112) and holds 255.255.255.255.
		return RefuseNotUnicast
	case a.IsLoopback() && !loopbackOK:
		return RefuseLoopback
	}
	return RefuseNone
}
