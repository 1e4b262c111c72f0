package nic

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// linkMsg builds one rtnetlink message: a header and a struct ifinfomsg.
func linkMsg(typ uint16, index int32, flags uint32) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg+8) // and one attribute's room
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint32(b[unix.NLMSG_HDRLEN+4:], uint32(index))
	binary.NativeEndian.PutUint32(b[unix.NLMSG_HDRLEN+8:], flags)
	return b
}

// The link messages of one read, in order: up (IFF_UP and IFF_RUNNING),
// administratively up without a carrier, down, deleted; a message of
// another type and a truncated one are skipped.
func TestParseLinkEvents(t *testing.T) {
	var b []byte
	b = append(b, linkMsg(unix.RTM_NEWLINK, 7, unix.IFF_UP|unix.IFF_RUNNING|unix.IFF_LOWER_UP)...)
	b = append(b, linkMsg(unix.RTM_NEWLINK, 7, unix.IFF_UP)...)
	b = append(b, linkMsg(unix.RTM_NEWADDR, 7, 0)...)
	b = append(b, linkMsg(unix.RTM_NEWLINK, 7, 0)...)
	b = append(b, linkMsg(unix.RTM_DELLINK, 9, 0)...)
	b = append(b, linkMsg(unix.RTM_NEWLINK, 3, unix.IFF_UP|unix.IFF_RUNNING)[:20]...)
	got := parseLinkEvents(b)
	want := []linkEvent{{7, true, false}, {7, false, false}, {7, false, false}, {9, false, true}}
	if len(got) != len(want) {
		t.Fatalf("%+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzLinkEvents: whatever a netlink read holds parses without a panic,
// and never yields more events than whole messages fit in it.
func FuzzLinkEvents(f *testing.F) {
	f.Add(linkMsg(unix.RTM_NEWLINK, 2, unix.IFF_UP|unix.IFF_RUNNING))
	f.Add(append(linkMsg(unix.RTM_DELLINK, 2, 0), linkMsg(unix.RTM_NEWLINK, 3, 0)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 16, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := len(parseLinkEvents(b)); n > len(b)/(unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg) {
			t.Fatalf("%d events from %d bytes", n, len(b))
		}
	})
}
