package serial

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPTYRoundTrip(t *testing.T) {
	m, slave, err := OpenPTY()
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	defer m.Close()
	s, err := Open(slave, 9600)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := "$GPRMC,120000,A*00\r\n" // CR must survive: the line discipline is raw
	if _, err := m.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	got := ""
	for len(got) < len(msg) {
		n, err := s.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got += string(buf[:n])
	}
	if got != msg {
		t.Errorf("got %q want %q", got, msg)
	}
}

func TestOpenRefusesOddRates(t *testing.T) {
	if _, err := Open("/dev/null", 12345); err == nil {
		t.Error("accepted a non-standard rate")
	}
	if _, err := Open("/dev/null", 9600); err == nil {
		t.Error("accepted a non-terminal")
	}
}

func recvLink(t *testing.T, ch <-chan Link, up bool) Link {
	t.Helper()
	select {
	case l := <-ch:
		if l.Up != up {
			t.Fatalf("link %+v, want up=%v", l, up)
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatalf("no link event (want up=%v)", up)
	}
	return Link{}
}

func recvData(t *testing.T, ch <-chan Chunk, want string) {
	t.Helper()
	got := ""
	deadline := time.After(5 * time.Second)
	for len(got) < len(want) {
		select {
		case c := <-ch:
			got += string(c.Data)
		case <-deadline:
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A receiver that disappears (the pty goes away, as a USB device does) is
// reported down, retried, and read again when it is back.
func TestReaderSurvivesReceiverGoneAndBack(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "gnss")
	m, slave, err := OpenPTY()
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	os.Symlink(slave, link)
	r := &Reader{Device: link, Baud: 115200, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, links := make(chan Chunk, 16), make(chan Link, 16)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, out, links) }()

	recvLink(t, links, true)
	time.Sleep(50 * time.Millisecond) // let the reader finish its open (and input flush)
	m.Write([]byte("one\r\n"))
	recvData(t, out, "one\r\n")

	m.Close() // receiver unplugged
	os.Remove(link)
	if l := recvLink(t, links, false); l.Err == nil {
		t.Error("down without a reason")
	}
	m2, slave2, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	os.Symlink(slave2, link)
	recvLink(t, links, true)
	time.Sleep(50 * time.Millisecond)
	m2.Write([]byte("two\r\n"))
	recvData(t, out, "two\r\n")

	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return on cancel while blocked in read")
	}
}

func TestReaderTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("$GPZDA*00\r\n"))
			c.Close()
		}
	}()
	r := &Reader{Device: "tcp://" + ln.Addr().String(), MinBackoff: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, links := make(chan Chunk, 16), make(chan Link, 16)
	go r.Run(ctx, out, links)
	recvLink(t, links, true)
	recvData(t, out, "$GPZDA*00\r\n")
	if l := recvLink(t, links, false); l.Err == nil {
		t.Error("hang-up without a reason")
	}
}

// pollingReader runs a Reader with greeting HELLO and poll POLL every 50
// ms (greeted: its Greeted) on a pty, and returns what reads the receiver's
// side: until what occurs n times in got, which it appends to.
func pollingReader(t *testing.T, greeted func(time.Time) bool) (got *string, readUntil func(what string, n int)) {
	t.Helper()
	m, slave, err := OpenPTY()
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	r := &Reader{Device: slave, Baud: 115200, Greeting: []byte("HELLO"), Poll: []byte("POLL"), PollEvery: 50 * time.Millisecond,
		Greeted: greeted}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out, links := make(chan Chunk, 16), make(chan Link, 16)
	go r.Run(ctx, out, links)
	recvLink(t, links, true)
	m.SetReadDeadline(time.Now().Add(5 * time.Second))
	got = new(string)
	buf := make([]byte, 64)
	return got, func(what string, n int) {
		t.Helper()
		for strings.Count(*got, what) < n {
			k, err := m.Read(buf)
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, *got)
			}
			*got += string(buf[:k])
		}
	}
}

// The greeting and the poll reach a serial receiver when it is opened,
// and the poll again every PollEvery while it stays open.
func TestReaderPolls(t *testing.T) {
	got, readUntil := pollingReader(t, nil)
	readUntil("POLL", 3)
	if !strings.HasPrefix(*got, "HELLOPOLL") || strings.Count(*got, "HELLO") != 1 {
		t.Errorf("%q: want the greeting at the open only", *got)
	}
}

// A receiver that misses the greeting at open (booting, busy) is greeted
// again with each poll until it has answered since the open; then only
// the poll goes.
func TestReaderGreetsUntilAnswered(t *testing.T) {
	var answered atomic.Int64 // when the receiver answered (unix ns); 0: not yet
	var opened atomic.Int64   // the open the reader asked about
	got, readUntil := pollingReader(t, func(since time.Time) bool {
		opened.Store(since.UnixNano())
		a := answered.Load()
		return a != 0 && a >= since.UnixNano()
	})
	// The greeting at open is lost (nothing answers): it goes again with
	// the polls.
	readUntil("HELLOPOLL", 3)
	// The receiver answers: polls written before may still be on their
	// way; the first poll alone marks the point after which no greeting
	// may come.
	answered.Store(time.Now().UnixNano())
	*got = ""
	for !strings.Contains(strings.ReplaceAll(*got, "HELLOPOLL", ""), "POLL") {
		readUntil("POLL", strings.Count(*got, "POLL")+1)
	}
	*got = (*got)[strings.LastIndex(*got, "POLL")+4:]
	readUntil("POLL", 2)
	if strings.Contains(*got, "HELLO") {
		t.Errorf("after the answer: %q, want the poll alone", *got)
	}
	if opened.Load() == 0 || opened.Load() > answered.Load() {
		t.Errorf("asked about answers since %d, the answer came at %d", opened.Load(), answered.Load())
	}
}
