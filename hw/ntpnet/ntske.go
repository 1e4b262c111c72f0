package ntpnet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/facebook/time/ntp/ntske"
	"golang.org/x/sys/unix"

	"sitegm/ntp"
)

// NTS-KE over TLS 1.3 (RFC 8915 4), bounded: a handshake costs a
// signature, so a flood of them must cost CPU only up to a ceiling, and
// never the NTP workers' or the PTP ports' time. Connections beyond
// KEOptions.MaxConcurrent, beyond a source's budget or beyond the total
// rate are closed at accept, before any TLS; each exchange has one
// deadline for the handshake, the request and the answer; a request is
// read to 1 KiB at most (ntp.KEReadRequest).

// KEOptions of an NTS-KE server.
type KEOptions struct {
	Interface string
	Port      int // 4460 (RFC 8915 4)
	// CertFile and KeyFile are the server's certificate chain and key
	// (PEM), read again when either file changes (a renewed certificate
	// is served from the next handshake on).
	CertFile, KeyFile string
	Keys              *ntp.CookieKeys
	// NTPPort is advertised in a Port Negotiation record when it is not
	// 123.
	NTPPort int
	// MaxConcurrent exchanges (default 32), Rate and Burst the handshakes
	// a second in total (default 100 and 100), SourceRate and SourceBurst
	// per source address (default 1 and 8), Timeout of one exchange
	// (default 5 s).
	MaxConcurrent      int
	Rate, SourceRate   float64
	Burst, SourceBurst int
	Timeout            time.Duration
	SourceTable        int // sources tracked (default 4096)
	Stats              *KEStats
}

// KEStats counts an NTS-KE server's connections.
type KEStats struct {
	Sessions  atomic.Uint64 // cookies handed out
	Refused   atomic.Uint64 // Error records: a request sitegm does not serve
	Failed    atomic.Uint64 // handshakes or exchanges that failed or timed out
	Shed      atomic.Uint64 // closed at accept: over the concurrency, a source's budget or the total rate
	Handshake atomic.Uint64 // TLS handshakes completed
}

func (o *KEOptions) defaults() {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 32
	}
	if o.Rate <= 0 {
		o.Rate, o.Burst = 100, 100
	}
	if o.SourceRate <= 0 {
		o.SourceRate, o.SourceBurst = 1, 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.SourceTable <= 0 {
		o.SourceTable = 4096
	}
	if o.Stats == nil {
		o.Stats = &KEStats{}
	}
}

// bucket is a token bucket: rate a second, burst at most (the total
// rate of handshakes; per source, ntp.RateTable).
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.at.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// admission decides at accept whether a connection is served: under
// the concurrency, within the source's credit (ntp.RateTable, the NTP
// rate limiter's fixed-size table: a flood of addresses evicts, it does
// not grow) and within the total rate.
type admission struct {
	mu      sync.Mutex
	o       *KEOptions
	total   bucket
	sources *ntp.RateTable
	base    time.Time
	active  int
}

func newAdmission(o *KEOptions, now time.Time) *admission {
	per := time.Duration(float64(time.Second) / o.SourceRate)
	return &admission{o: o, sources: ntp.NewRateTable(o.SourceTable, per, o.SourceBurst), base: now}
}

func (a *admission) admit(from netip.Addr, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active >= a.o.MaxConcurrent {
		return false
	}
	if !a.sources.Allow(from, int64(now.Sub(a.base))) || !a.total.take(now, a.o.Rate, a.o.Burst) {
		return false
	}
	a.active++
	return true
}

func (a *admission) done() {
	a.mu.Lock()
	a.active--
	a.mu.Unlock()
}

// certLoader serves the certificate, read again when its files change.
type certLoader struct {
	mu        sync.Mutex
	cert, key string
	stamp     string
	c         *tls.Certificate
}

func (l *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ci, err1 := os.Stat(l.cert)
	ki, err2 := os.Stat(l.key)
	if err := errors.Join(err1, err2); err != nil {
		if l.c != nil {
			return l.c, nil // a renewal in progress: the last good one
		}
		return nil, err
	}
	stamp := fmt.Sprint(ci.ModTime().UnixNano(), ci.Size(), ki.ModTime().UnixNano(), ki.Size())
	if stamp != l.stamp || l.c == nil {
		c, err := tls.LoadX509KeyPair(l.cert, l.key)
		if err != nil {
			if l.c != nil {
				return l.c, nil
			}
			return nil, err
		}
		l.c, l.stamp = &c, stamp
	}
	return l.c, nil
}

// CheckKECertificate reads the certificate and key as ServeKE will (the
// daemon says what is wrong before it serves).
func CheckKECertificate(certFile, keyFile string) error {
	_, err := tls.LoadX509KeyPair(certFile, keyFile)
	return err
}

// ServeKE serves NTS-KE on o.Interface until ctx ends.
func ServeKE(ctx context.Context, o KEOptions, log *slog.Logger) error {
	o.defaults()
	certs := &certLoader{cert: o.CertFile, key: o.KeyFile}
	if _, err := certs.get(nil); err != nil {
		return fmt.Errorf("NTS-KE certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"ntske/1"}, GetCertificate: certs.get}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if o.Interface != "" {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, o.Interface)
			}
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(ctx, "tcp4", fmt.Sprintf(":%d", o.Port))
	if err != nil {
		return fmt.Errorf("NTS-KE on %s port %d: %w", o.Interface, o.Port, err)
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	log.Info("NTS-KE up", "event", "nts_ke_up", "ntp_interface", o.Interface, "nts_ke_port", o.Port)
	adm := newAdmission(&o, time.Now())
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				time.Sleep(100 * time.Millisecond) // out of descriptors: let exchanges finish
				continue
			}
			return err
		}
		from := netip.Addr{}
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			from = ta.AddrPort().Addr().Unmap()
		}
		if !adm.admit(from, time.Now()) {
			o.Stats.Shed.Add(1)
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer adm.done()
			exchange(conn, cfg, &o)
		}()
	}
}

// exchange runs one NTS-KE exchange on conn.
func exchange(conn net.Conn, cfg *tls.Config, o *KEOptions) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(o.Timeout))
	tc := tls.Server(conn, cfg)
	if err := tc.Handshake(); err != nil || tc.ConnectionState().NegotiatedProtocol != "ntske/1" {
		o.Stats.Failed.Add(1)
		return
	}
	o.Stats.Handshake.Add(1)
	req, err := ntp.KEReadRequest(tc)
	if err != nil {
		o.Stats.Failed.Add(1)
		return
	}
	cs := tc.ConnectionState()
	port := uint16(0)
	if o.NTPPort != 0 && o.NTPPort != 123 {
		port = uint16(o.NTPPort)
	}
	out, res := ntp.KEAnswer(req, o.Keys, rand.Reader, cs.ExportKeyingMaterial, "", port)
	b, err := ntske.MarshalRecords(out)
	if err == nil {
		_, err = tc.Write(b)
	}
	switch {
	case err != nil:
		o.Stats.Failed.Add(1)
	case res == ntp.KEOK:
		o.Stats.Sessions.Add(1)
	default:
		o.Stats.Refused.Add(1)
	}
}
