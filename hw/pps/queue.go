package pps

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// queueReader reads a queue the kernel keeps for a source (a PHC's EXTTS
// events, the SOCK socket's datagrams) and knows when it last found it
// empty (Edge.After): an entry read after an empty look was queued after
// that look. The look is poll(2): ptp_read ignores O_NONBLOCK and would
// wait in the kernel instead of saying EAGAIN, while ptp_poll, like a
// socket's poll, says whether the queue holds anything. The look's time
// is taken before it (a look that finds an entry may find one queued
// after the time).
type queueReader struct {
	rc syscall.RawConn
	// empty: the last look that found the queue empty began then; zero
	// until one did (the queue may hold entries from before the open).
	empty time.Time
}

// read reads one entry into buf, waiting for one, and returns its length
// and the time it cannot have been queued before.
func (q *queueReader) read(buf []byte) (int, time.Time, error) {
	var n int
	var rerr error
	err := q.rc.Read(func(fd uintptr) bool {
		tried := time.Now()
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, err := unix.Poll(pfd, 0); err == nil && k == 0 {
			q.empty = tried
			return false // wait until the queue is readable
		}
		for {
			n, rerr = unix.Read(int(fd), buf)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	return n, q.empty, err
}
