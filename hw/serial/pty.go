package serial

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenPTY creates a pseudo-terminal pair (what gnss-sim offers as a
// receiver). The master is returned non-blocking; the slave path is what a
// reader opens. The slave side is put in raw mode here so the line
// discipline never rewrites NMEA (CR to NL) or echoes it back.
func OpenPTY() (master *os.File, slavePath string, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("pty: %w", err)
	}
	fail := func(e error) (*os.File, string, error) {
		unix.Close(fd)
		return nil, "", fmt.Errorf("pty: %w", e)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt(3)
		return fail(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN) // ptsname(3)
	if err != nil {
		return fail(err)
	}
	slavePath = fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(sfd)
	t, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		return fail(err)
	}
	MakeRaw(t)
	if err := unix.IoctlSetTermios(sfd, unix.TCSETS, t); err != nil {
		return fail(err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), slavePath, nil
}
