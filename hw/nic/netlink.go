package nic

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// EachNetlinkMessage calls f with the type and payload of each whole
// netlink message in b (netlink(7): a struct nlmsghdr, then the payload,
// each message aligned to 4 bytes), and stops at the first malformed one:
// a length shorter than the header or longer than what is left.
func EachNetlinkMessage(b []byte, f func(typ uint16, msg []byte)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[4:]), b[unix.NLMSG_HDRLEN:l])
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if al > len(b) {
			return
		}
		b = b[al:]
	}
}
