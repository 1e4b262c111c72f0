package ntpnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"sitegm/hw/udpio"
	"sitegm/ntp"
	"sitegm/ntp/upstream"
)

// Poll asks host the time every interval until ctx ends and hands each
// answer, or why there is none, to record. now reads the disciplined
// clock as UTC; when it cannot be read the poll is skipped (a host is
// never measured against another clock).
//
// The exchange is timed as pollOnce says (kernel timestamps where the
// socket gives them); the path's delay, reported with each offset,
// bounds the error either way.
func Poll(ctx context.Context, interval time.Duration, host string, port int, now func() (time.Time, error), record func(ntp.PollResult)) {
	// The first poll comes within a few seconds, hosts spread apart.
	wait := time.Duration(rand.Int64N(int64(min(interval, 5*time.Second))))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = interval
		r, ok := pollOnce(ctx, host, port, min(interval/2, 2*time.Second), now, nil)
		if ok {
			record(r)
		}
	}
}

// pollOnce sends one request and waits up to timeout for the reply that
// echoes it; replies that do not are spoofed or stale and ignored.
//
// Where the socket gives them, the exchange is timed by the kernel's
// software timestamps (SO_TIMESTAMPING: the moment the request left and
// the reply arrived, CLOCK_REALTIME), carried onto the disciplined clock
// by one reading of both clocks: a busy host's scheduling delay then
// stays out of the offset. Otherwise, the clock is read around the
// system calls.
//
// With xl (the upstreams), the request asks for interleaved mode after
// the exchange xl records: a server that keeps the state answers with the
// precise time its previous reply left, and the result is that previous
// exchange, completed. xl is updated to this exchange (cleared when there
// is none).
func pollOnce(ctx context.Context, host string, port int, timeout time.Duration, now func() (time.Time, error), xl *ntp.Exchange) (ntp.PollResult, bool) {
	var prev ntp.Exchange
	if xl != nil {
		prev, *xl = *xl, ntp.Exchange{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return ntp.PollResult{Err: fmt.Errorf("resolve or connect: %w", err)}, ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded)
	}
	defer c.Close()
	var from netip.Addr
	if ua, ok := c.RemoteAddr().(*net.UDPAddr); ok {
		from, _ = netip.AddrFromSlice(ua.IP)
		from = from.Unmap()
	}
	var rc syscall.RawConn
	if uc, ok := c.(*net.UDPConn); ok {
		if r, err := uc.SyscallConn(); err == nil && udpio.SetStamps(r, udpio.Software, udpio.Software) == nil {
			rc = r
		}
	}
	t1, err := now()
	if err != nil {
		return ntp.PollResult{}, false
	}
	tx := ntp.Timestamp(t1)
	req := make([]byte, ntp.HeaderLen)
	if prev.T2 != 0 {
		ntp.RequestInterleaved(req, tx, prev)
	} else {
		ntp.Request(req, tx)
	}
	if _, err := c.Write(req); err != nil {
		return ntp.PollResult{T1: t1, Err: err, From: from}, true
	}
	// The disciplined clock minus CLOCK_REALTIME, read together.
	var delta time.Duration
	kernel := false
	if rc != nil {
		if ktx, err := udpio.TxStampOf(rc, 100*time.Millisecond); err == nil {
			if cn, err := now(); err == nil {
				delta = time.Until(cn) // cn minus CLOCK_REALTIME now
				t1, kernel = ktx.Add(delta), true
			}
		}
	}
	deadline, _ := ctx.Deadline()
	c.SetReadDeadline(deadline)
	buf, oob := make([]byte, 1024), make([]byte, 512)
	var lastErr error = errors.New("no reply")
	for {
		var n int
		var krx time.Time
		if kernel {
			n, krx, err = udpio.ReadStamped(rc, buf, oob)
		} else {
			n, err = c.Read(buf)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				return ntp.PollResult{T1: t1, Err: fmt.Errorf("%v within %v", lastErr, timeout), From: from}, true
			}
			// ICMP port unreachable and the like: say so at once.
			return ntp.PollResult{T1: t1, Err: err, From: from}, true
		}
		var t4 time.Time
		if kernel && !krx.IsZero() {
			t4 = krx.Add(delta)
		} else if t4, err = now(); err != nil {
			return ntp.PollResult{}, false
		}
		s, inter, rx, err := ntp.ParseReplyInterleaved(buf[:n], tx, prev)
		switch {
		case err == nil:
			if xl != nil {
				*xl = ntp.Exchange{T1: t1, T4: t4, T2: rx}
			}
			r := ntp.PollResult{T1: t1, T4: t4, Sample: s, Kernel: kernel && !krx.IsZero(), From: from}
			if inter {
				r.T1, r.T4, r.Interleaved = prev.T1, prev.T4, true
			}
			return r, true
		case errors.Is(err, ntp.ErrBogus), errors.Is(err, ntp.ErrShort), errors.Is(err, ntp.ErrMode):
			lastErr = err // not the answer to this request: keep waiting
		default:
			return ntp.PollResult{T1: t1, Err: err, From: from}, true
		}
	}
}

// PollUpstream polls source i of set when it is due, until ctx ends, and
// records each answer or miss; now reads the disciplined clock as UTC
// (a poll is skipped when it cannot be read).
func PollUpstream(ctx context.Context, set *upstream.Set, i int, host string, port int, now func() (time.Time, error)) {
	// The last exchange, for interleaved mode, and the clock step
	// generation it was made in (one across a step measures nothing).
	var xl ntp.Exchange
	var xlGen uint64
	var lastT4 time.Time // the exchange last taken
	for {
		wait := time.Second
		if t, err := now(); err == nil {
			wait = min(max(set.Due(i).Sub(t), 0), time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		t, err := now()
		if err != nil || t.Before(set.Due(i)) {
			continue
		}
		if g := set.Polled(i, t); g != xlGen {
			xl, xlGen = ntp.Exchange{}, g
		}
		r, ok := pollOnce(ctx, host, port, 2*time.Second, now, &xl)
		var kiss ntp.KissError
		switch {
		case !ok:
		case errors.As(r.Err, &kiss):
			set.Kissed(i, kiss.Code)
		case r.Err != nil:
			set.Miss(i, r.Err.Error())
		case r.Interleaved && r.T4.Equal(lastT4):
			// The first interleaved answer completes the exchange whose
			// basic answer was already taken: it shows the server
			// answers so, and is not the same measurement twice.
			set.Heard(i, r.From, r.Kernel, r.Interleaved)
			set.Reached(i)
		default:
			set.Heard(i, r.From, r.Kernel, r.Interleaved)
			set.Answer(i, r.Sample, r.T1, r.T4)
			lastT4 = r.T4
		}
	}
}
