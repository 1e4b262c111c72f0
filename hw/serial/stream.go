package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Chunk is bytes from the receiver and the local time the read returned.
type Chunk struct {
	Data []byte
	At   time.Time
}

// Link reports the receiver stream going up or down.
type Link struct {
	Up  bool
	Err error // why it is down (open or read error)
}

// Reader keeps one receiver stream open, reopening it after errors.
type Reader struct {
	// Device is a device path, or tcp://HOST:PORT.
	Device string
	Baud   int
	// Now timestamps each read; time.Now when nil.
	Now func() time.Time
	// Backoff between attempts grows from MinBackoff to MaxBackoff (250 ms
	// and 10 s when zero): quick when a USB receiver re-enumerates, gentle
	// when it is gone for good.
	MinBackoff, MaxBackoff time.Duration
	// Greeting is written to a serial device each time it is opened (a
	// poll for the receiver's identity); a TCP feed is not written to,
	// and a write that fails costs nothing but the answer.
	Greeting []byte
	// Greeted reports whether the receiver has answered the greeting
	// since the time given (the open). Until it has, the greeting goes
	// again with each Poll: a receiver booting, busy or still on its way
	// when the port opened misses the one at open, and would otherwise
	// never say what it is (a kernel lab run: the commissioning report
	// then lacked the model). nil: the greeting is written at open only.
	Greeted func(since time.Time) bool
	// Poll is written to a serial device every PollEvery while it is open
	// (a request for what the receiver does not send by itself: u-blox's
	// PUBX,04, the leap second count in NMEA mode); not to a TCP feed.
	Poll      []byte
	PollEvery time.Duration
}

// Run reads until ctx ends, sending every chunk to out and every change of
// the link to link. It returns ctx.Err().
func (r *Reader) Run(ctx context.Context, out chan<- Chunk, link chan<- Link) error {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	minB, maxB := r.MinBackoff, r.MaxBackoff
	if minB == 0 {
		minB = 250 * time.Millisecond
	}
	if maxB == 0 {
		maxB = 10 * time.Second
	}
	backoff := minB
	reported := false // a down state was sent for the current outage
	send := func(l Link) {
		select {
		case link <- l:
		case <-ctx.Done():
		}
	}
	for ctx.Err() == nil {
		s, err := r.open(ctx)
		if err != nil {
			if !reported {
				send(Link{Up: false, Err: err})
				reported = true
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(2*backoff, maxB)
			continue
		}
		backoff = minB
		reported = false
		send(Link{Up: true})
		stopPoll := func() {}
		if w, ok := s.(io.Writer); ok && !strings.HasPrefix(r.Device, "tcp://") {
			opened := now()
			w.Write(r.greetAndPoll())
			stopPoll = r.poll(ctx, w, opened)
		}
		err = r.read(ctx, s, out, now)
		stopPoll()
		s.Close()
		if ctx.Err() != nil {
			break
		}
		send(Link{Up: false, Err: err})
		reported = true
		// A device that vanished usually needs a moment before it can be
		// opened again; the backoff wait above covers it.
	}
	return ctx.Err()
}

// greetAndPoll is what an open writes: the greeting, then the poll.
func (r *Reader) greetAndPoll() []byte {
	return append(append([]byte(nil), r.Greeting...), r.Poll...)
}

// poll writes r.Poll to w every r.PollEvery until the returned function
// is called (the stream closed), with the greeting before it while the
// receiver has not answered it since opened (r.Greeted). A write that
// fails costs nothing but the answer; the device's own error ends the
// stream in read.
func (r *Reader) poll(ctx context.Context, w io.Writer, opened time.Time) (stop func()) {
	regreet := r.Greeted != nil && len(r.Greeting) > 0
	if (len(r.Poll) == 0 && !regreet) || r.PollEvery <= 0 {
		return func() {}
	}
	both := r.greetAndPoll()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.PollEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if regreet && !r.Greeted(opened) {
					w.Write(both)
				} else {
					w.Write(r.Poll)
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished // no write to a closed descriptor number that may be reused
	}
}

func (r *Reader) open(ctx context.Context) (io.ReadCloser, error) {
	if addr, ok := strings.CutPrefix(r.Device, "tcp://"); ok {
		d := net.Dialer{Timeout: 5 * time.Second}
		return d.DialContext(ctx, "tcp", addr)
	}
	return Open(r.Device, r.Baud)
}

func (r *Reader) read(ctx context.Context, s io.ReadCloser, out chan<- Chunk, now func() time.Time) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	buf := make([]byte, 4096)
	for {
		n, err := s.Read(buf)
		at := now()
		if n > 0 {
			c := Chunk{Data: append([]byte(nil), buf[:n]...), At: at}
			select {
			case out <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s: end of stream (hung up)", r.Device)
			}
			return err
		}
	}
}
