package status

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts with EMFILE (the process out of
// descriptors), then hands out connections, then is closed.
type flakyListener struct {
	fails int
	conns chan net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Err: syscall.EMFILE}
	}
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *flakyListener) Close() error   { return nil }
func (l *flakyListener) Addr() net.Addr { return nil }

// Issue 11 item 6: failed accepts do not end the status listener; it
// serves the connections that follow.
func TestAcceptSurvivesErrors(t *testing.T) {
	l := &flakyListener{fails: 5, conns: make(chan net.Conn)}
	var served atomic.Int32
	done := make(chan struct{})
	go func() {
		acceptLoop(l, 4, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c net.Conn) {
			c.Write([]byte("ok"))
			served.Add(1)
		})
		close(done)
	}()
	for i := 0; i < 3; i++ {
		a, b := net.Pipe()
		l.conns <- a
		buf := make([]byte, 2)
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatalf("connection %d after failed accepts: %v", i, err)
		}
		b.Close()
	}
	close(l.conns)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end when the listener closed")
	}
	if served.Load() != 3 {
		t.Errorf("served %d", served.Load())
	}
}

// Connections beyond the limit are closed at once, not queued behind
// clients that never read.
func TestAcceptBounded(t *testing.T) {
	l := &flakyListener{conns: make(chan net.Conn)}
	block := make(chan struct{})
	go acceptLoop(l, 2, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c net.Conn) { <-block })
	var held []net.Conn
	for i := 0; i < 2; i++ {
		a, b := net.Pipe()
		l.conns <- a
		held = append(held, b)
	}
	a, b := net.Pipe()
	l.conns <- a
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("third connection: %v, want closed", err)
	}
	close(block)
	close(l.conns)
	for _, c := range held {
		c.Close()
	}
}
