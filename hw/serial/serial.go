// Package serial opens the receiver's byte stream (a serial device, a pty,
// or a TCP socket) and keeps it open: when a USB receiver disappears it
// retries with backoff and carries on when it comes back.
package serial

import (
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// Rates are the line rates termios can set with a standard Bnnn constant.
var Rates = map[int]uint32{
	300: unix.B300, 600: unix.B600, 1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800,
	9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800, 921600: unix.B921600,
	1000000: unix.B1000000, 1500000: unix.B1500000, 2000000: unix.B2000000,
	3000000: unix.B3000000, 4000000: unix.B4000000,
}

// RateList is Rates' keys in order, for messages.
func RateList() []int {
	var r []int
	for k := range Rates {
		r = append(r, k)
	}
	sort.Ints(r)
	return r
}

// Open opens a serial device (or pty) raw, 8N1, at baud, with the kernel's
// input queue flushed: bytes queued before we opened are old sentences whose
// arrival time would lie about when they were sent.
//
// The descriptor is non-blocking and handed to Go's poller, so reads honour
// deadlines and Close unblocks a pending read (shutdown never waits on a
// silent receiver).
func Open(path string, baud int) (*os.File, error) {
	speed, ok := Rates[baud]
	if !ok {
		return nil, fmt.Errorf("serial: %d baud is not a standard rate", baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := configure(fd, speed); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("serial: %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// configure sets raw mode the way cfmakeraw(3) does, plus 8N1, receiver on,
// modem control lines ignored (receivers rarely wire DCD), and the speed.
func configure(fd int, speed uint32) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("not a terminal: %w", err)
	}
	MakeRaw(t)
	t.Cflag &^= unix.CBAUD | unix.CSTOPB | unix.PARENB | unix.CRTSCTS
	t.Cflag |= speed | unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Ispeed, t.Ospeed = speed, speed
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
}

// MakeRaw clears every input, output and line-discipline transformation:
// no echo, no canonical lines, no CR/NL mapping, no signals, 8-bit clean,
// a read returns as soon as one byte is there.
func MakeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// Drain waits until everything written to f has left the line
// (tcdrain(3)): a rate change must not cut the frame that asked for it.
func Drain(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) { derr = unix.IoctlSetInt(int(fd), unix.TCSBRK, 1) }); err != nil {
		return err
	}
	return derr
}
