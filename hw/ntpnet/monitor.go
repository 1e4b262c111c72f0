package ntpnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"sitegm/internal/monitor"
	"sitegm/ntp"
	"sitegm/ntp/upstream"
)

// Poll asks h's host the time every interval until ctx ends and records
// each answer, or why there is none, in h. now reads the disciplined
// clock as UTC; when it cannot be read the poll is skipped (a host is
// never measured against another clock). trusted says whether that clock
// knows the time (LOCKED or HOLDOVER).
//
// The timestamps are taken in user space around the exchange: the
// recorders and cameras watched here keep time to milliseconds, and the
// path's delay (reported with each offset) bounds the error.
func Poll(ctx context.Context, h *monitor.Host, host string, port int, now func() (time.Time, error), trusted func() bool) {
	cfg := h.Config()
	// The first poll comes within a few seconds, hosts spread apart.
	wait := time.Duration(rand.Int64N(int64(min(cfg.Interval, 5*time.Second))))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = cfg.Interval
		r, ok := pollOnce(ctx, host, port, min(cfg.Interval/2, 2*time.Second), now)
		if ok {
			h.Record(r, trusted())
		}
	}
}

// pollOnce sends one request and waits up to timeout for the reply that
// echoes it; replies that do not are spoofed or stale and ignored.
func pollOnce(ctx context.Context, host string, port int, timeout time.Duration, now func() (time.Time, error)) (monitor.Result, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return monitor.Result{Err: fmt.Errorf("resolve or connect: %w", err)}, ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded)
	}
	defer c.Close()
	t1, err := now()
	if err != nil {
		return monitor.Result{}, false
	}
	tx := ntp.Timestamp(t1)
	req := make([]byte, ntp.HeaderLen)
	ntp.Request(req, tx)
	if _, err := c.Write(req); err != nil {
		return monitor.Result{T1: t1, Err: err}, true
	}
	deadline, _ := ctx.Deadline()
	c.SetReadDeadline(deadline)
	buf := make([]byte, 1024)
	var lastErr error = errors.New("no reply")
	for {
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return monitor.Result{T1: t1, Err: fmt.Errorf("%v within %v", lastErr, timeout)}, true
			}
			// ICMP port unreachable and the like: say so at once.
			return monitor.Result{T1: t1, Err: err}, true
		}
		t4, err := now()
		if err != nil {
			return monitor.Result{}, false
		}
		s, err := ntp.ParseReply(buf[:n], tx)
		switch {
		case err == nil:
			return monitor.Result{T1: t1, T4: t4, Sample: s}, true
		case errors.Is(err, ntp.ErrBogus), errors.Is(err, ntp.ErrShort), errors.Is(err, ntp.ErrMode):
			lastErr = err // not the answer to this request: keep waiting
		default:
			return monitor.Result{T1: t1, Err: err}, true
		}
	}
}

// PollUpstream polls source i of set when it is due, until ctx ends, and
// records each answer or miss; now reads the disciplined clock as UTC
// (a poll is skipped when it cannot be read).
func PollUpstream(ctx context.Context, set *upstream.Set, i int, host string, port int, now func() (time.Time, error)) {
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
		set.Polled(i, t)
		r, ok := pollOnce(ctx, host, port, 2*time.Second, now)
		var kiss ntp.KissError
		switch {
		case !ok:
		case errors.As(r.Err, &kiss):
			set.Kissed(i, kiss.Code)
		case r.Err != nil:
			set.Miss(i, r.Err.Error())
		default:
			set.Answer(i, r.Sample, r.T1, r.T4)
		}
	}
}
