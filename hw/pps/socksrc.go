package pps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// SockSource receives chrony/gpsd SOCK samples on a unix datagram socket:
// gpsd (pointed at this socket) or gnss-sim --pps-sock. Each sample is
// taken as one PPS edge on CLOCK_REALTIME.
type SockSource struct {
	Path  string
	stats Stats
}

// Name implements Source.
func (s *SockSource) Name() string { return "sock:" + s.Path }

// Stats implements Source.
func (s *SockSource) Stats() *Stats { return &s.stats }

// Listen creates the socket (replacing a stale one) so that senders can
// find it; Run then reads it.
func (s *SockSource) Listen() (*net.UnixConn, error) {
	if fi, err := os.Lstat(s.Path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(s.Path) // left by a previous run
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.Path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("pps sock %s: %w", s.Path, err)
	}
	// Group-writable: gpsd runs as its own user in a group the operator
	// grants (see docs/hardware.md); not world-writable, since a sample
	// written here steers the clock.
	os.Chmod(s.Path, 0o660)
	return c, nil
}

// Run implements Source.
func (s *SockSource) Run(ctx context.Context, out chan<- Edge) error {
	c, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, c, out)
}

// Serve reads samples from a listening socket until ctx ends, then closes
// and removes it.
func (s *SockSource) Serve(ctx context.Context, c *net.UnixConn, out chan<- Edge) error {
	defer os.Remove(s.Path)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	// A sample read after the socket was found empty was sent after that
	// (Edge.After). gpsd stamps the pulse a moment before it sends: a
	// step in that moment is not seen (sitegm steps when a label comes,
	// tens of ms or more after its pulse).
	q := queueReader{rc: rc}
	buf := make([]byte, 256)
	for {
		n, after, err := q.read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		smp, err := ParseSockSample(buf[:n])
		if err != nil {
			s.stats.Bad.Add(1)
			continue
		}
		s.stats.Edges.Add(1)
		if !send(ctx, out, Edge{Time: smp.Edge(), Clock: Realtime, Leap: smp.Leap, After: after}) {
			return nil
		}
	}
}
