// Package caps narrows the process's Linux capabilities to what its
// configuration needs.
//
// The systemd unit grants the most any configuration needs (steering the
// system clock, binding ports below 1024, PTP over raw Ethernet, enabling
// hardware timestamps); a site that uses none of the last two should not
// run with them. sitegm drops, once it has started, every capability it
// will not use again, on every thread (capabilities are per thread in
// Linux: syscall.AllThreadsSyscall applies the change to all of them).
package caps

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cap is a capability number (linux/capability.h).
type Cap uint

// The capabilities sitegm may use.
const (
	NetBindService Cap = unix.CAP_NET_BIND_SERVICE
	NetAdmin       Cap = unix.CAP_NET_ADMIN
	NetRaw         Cap = unix.CAP_NET_RAW
	SysTime        Cap = unix.CAP_SYS_TIME
)

// names are linux/capability.h's, by number (0-40, Linux 5.9 on): the
// log names every capability sitegm keeps or drops, not only its own.
var names = [...]string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE"}

// String is the capability's name (CAP_SYS_TIME), or its number for one
// newer than this table.
func (c Cap) String() string {
	if int(c) < len(names) {
		return "CAP_" + names[c]
	}
	return fmt.Sprintf("cap%d", uint(c))
}

// Set is a set of capabilities.
type Set uint64

// Of makes a set.
func Of(cs ...Cap) Set {
	var s Set
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

// Has tells whether c is in s.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

func (s Set) String() string {
	var out []string
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c.String())
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

type capHeader struct {
	version uint32
	pid     int32
}

type capData struct{ effective, permitted, inheritable uint32 }

// Current is the calling thread's permitted set.
func Current() (Set, error) {
	h := capHeader{version: unix.LINUX_CAPABILITY_VERSION_3}
	var d [2]capData
	if _, _, e := unix.RawSyscall(unix.SYS_CAPGET, uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
		return 0, e
	}
	return Set(d[0].permitted) | Set(d[1].permitted)<<32, nil
}

// Narrow keeps the capabilities of keep that the process has and drops
// the rest from the effective, permitted and inheritable sets (the
// ambient set follows), on every thread. It returns what is left.
// Dropping is for good: a later need has to wait for a restart.
func Narrow(keep Set) (Set, error) {
	have, err := Current()
	if err != nil {
		return 0, err
	}
	left := have & keep
	h := capHeader{version: unix.LINUX_CAPABILITY_VERSION_3}
	d := [2]capData{
		{effective: uint32(left), permitted: uint32(left)},
		{effective: uint32(left >> 32), permitted: uint32(left >> 32)},
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
		return have, fmt.Errorf("capset: %w", e)
	}
	return left, nil
}
