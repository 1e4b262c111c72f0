package itest

import (
	"context"
	"encoding/binary"
	"math"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sitegm/ntp"
)

// Forged replies on the video LAN: an attacker on the same switch reads
// the clients' requests (the switch floods: its address table ages at
// once) while sitegm's port is cut off, and answers each in sitegm's name
// with its own time, a second ahead. The plain NTP client takes them (its
// measurements show the second: the forgery is well formed); chronyd with
// NTS refuses every one (RFC 8915 5.7: the authenticator does not verify)
// and takes nothing until sitegm's port is back, then sitegm's replies
// again, on the truth.
func TestNTSForgedReplies(t *testing.T) {
	Parallel(t)
	needTools(t, "chronyd", "chronyc", "bridge")
	lab := NewLab(t)
	gm := lab.Host("gm", "10.94.0.1/24")
	cam := lab.Host("cam", "10.94.0.2/24")
	plainCam := lab.Host("cam2", "10.94.0.3/24")
	mal := lab.Host("mal", "10.94.0.66/24")
	dir := t.TempDir()
	_, ca := ntsSitegm(t, gm, dir, "")
	sock, logdir, _ := ntsChrony(t, cam, gm.Addr, ca, false)
	_, plainLog, _ := chronyClient(t, plainCam, t.TempDir(), gm.Addr)
	good := func(logdir string) (n int) {
		for _, m := range chronyMeasurements(t, logdir) {
			if m.stratum == 1 && m.passed {
				n++
			}
		}
		return n
	}
	WaitCount(t, 3*time.Minute, "chronyd's NTS measurements", 5, func() int { return good(logdir) })
	WaitCount(t, 3*time.Minute, "the plain client's measurements", 5, func() int { return good(plainLog) })

	// The clients keep sending to sitegm's address: pin its MAC, as their
	// ARP caches would hold it, so that cutting its port does not stop
	// them asking.
	mac, err := gm.Run("cat", "/sys/class/net/eth0/address")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{cam, plainCam} {
		if out, err := h.Run("ip", "neigh", "replace", gm.Addr, "lladdr", strings.TrimSpace(mac), "dev", "eth0", "nud", "permanent"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	// Cut sitegm's port and make the switch flood.
	run(t, "ip", "-n", lab.sw, "link", "set", "br0", "type", "bridge", "ageing_time", "0")
	run(t, "bridge", "-n", lab.sw, "link", "set", "dev", gm.Port, "state", "0")
	before := map[string]int{logdir: len(chronyMeasurements(t, logdir)), plainLog: len(chronyMeasurements(t, plainLog))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var toNTS, toPlain atomic.Int64
	forge := startForger(ctx, t, mal, netip.MustParseAddr(gm.Addr), func(src netip.Addr, nts bool) {
		if src.String() == cam.Addr {
			toNTS.Add(1)
		} else {
			toPlain.Add(1)
		}
	})
	// chronyd sends one request per cookie it holds (eight) and, none
	// coming back as a reply it can authenticate, no more until a new
	// NTS-KE, which the cut port stops too.
	WaitCount(t, 60*time.Second, "forged replies to the NTS client", 6, func() int { return int(toNTS.Load()) })
	WaitCount(t, 60*time.Second, "forged replies to the plain client", 5, func() int { return int(toPlain.Load()) })
	// The plain client measured the forged second.
	var plainForged int
	WaitFor(t, 30*time.Second, "the plain client's measurement of a forged reply", func() bool {
		plainForged = 0
		for _, m := range chronyMeasurements(t, plainLog)[before[plainLog]:] {
			if m.passed && math.Abs(math.Abs(m.offset)-0.85) < 0.15 { // a second ahead of the host, whose clock chronyd has as 150 ms behind
				plainForged++
			}
		}
		return plainForged > 0
	})
	cancel()
	<-forge
	during := chronyMeasurements(t, logdir)[before[logdir]:]
	taken := 0
	for _, m := range during {
		if m.passed {
			taken++
		}
	}
	t.Logf("forged: %d to the NTS client, %d to the plain client; the plain client measured %d of them (0.85 s off), chronyd with NTS logged %d and took %d",
		toNTS.Load(), toPlain.Load(), plainForged, len(during), taken)
	if taken != 0 {
		t.Errorf("chronyd with NTS took %d forged replies: %+v", taken, during)
	}
	// sitegm's port back: NTS measurements resume, on the truth.
	run(t, "bridge", "-n", lab.sw, "link", "set", "dev", gm.Port, "state", "3")
	run(t, "ip", "-n", lab.sw, "link", "set", "br0", "type", "bridge", "ageing_time", "30000")
	n0 := len(chronyMeasurements(t, logdir))
	WaitCount(t, 2*time.Minute, "chronyd's NTS measurements after the attack", 3, func() int {
		n := 0
		for _, m := range chronyMeasurements(t, logdir)[n0:] {
			if m.passed && m.stratum == 1 && math.Abs(m.offset) < 1e-3 {
				n++
			}
		}
		return n
	})
	if mode, _, _ := chronyAuth(t, sock, gm.Addr); mode != "NTS" {
		t.Errorf("chronyd's authentication mode %s after the attack", mode)
	}
}

// startForger reads, in h's namespace, every NTP request to server that
// the switch floods to it and answers it in the server's name: its own
// time a second ahead, the request's unique identifier echoed and, for an
// NTS request, an authenticator field of the right shape that no key made
// (RFC 8915 5.6). sent is called for each forgery; the returned channel
// closes when ctx ends.
func startForger(ctx context.Context, t *testing.T, h *Host, server netip.Addr, sent func(client netip.Addr, nts bool)) <-chan struct{} {
	t.Helper()
	var fd int
	err := h.InNS(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		return err
	})
	if err != nil {
		t.Fatalf("packet socket in %s: %v", h.NS, err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	raw := h.RawSocket(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(fd)
		buf := make([]byte, 2048)
		for ctx.Err() == nil {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 20+8+48 || buf[0]>>4 != 4 || buf[9] != unix.IPPROTO_UDP {
				continue
			}
			ihl := int(buf[0]&0xf) * 4
			src, _ := netip.AddrFromSlice(buf[12:16])
			dst, _ := netip.AddrFromSlice(buf[16:20])
			udp := buf[ihl:n]
			if dst != server || len(udp) < 8+48 || binary.BigEndian.Uint16(udp[2:]) != 123 {
				continue
			}
			req := udp[8:]
			if req[0]&7 != 3 {
				continue // not a client request
			}
			reply, nts := forgedReply(req)
			if raw.SendUDP(netip.AddrPortFrom(server, 123), netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:])), reply) == nil {
				sent(src, nts)
			}
		}
	}()
	return done
}

// forgedReply answers req as a stratum 1 server a second ahead of the
// host's clock; an NTS request (one with a unique identifier field) gets
// it back and an authenticator field with a random nonce and ciphertext.
func forgedReply(req []byte) ([]byte, bool) {
	now := time.Now().Add(time.Second)
	r := make([]byte, 48)
	r[0] = 0<<6 | 4<<3 | 4
	r[1], r[2], r[3] = 1, req[2], 0xec
	copy(r[12:], "GPS\x00")
	binary.BigEndian.PutUint64(r[16:], ntp.Timestamp(now.Add(-time.Second)))
	copy(r[24:32], req[40:48]) // origin: the request's transmit time
	binary.BigEndian.PutUint64(r[32:], ntp.Timestamp(now))
	binary.BigEndian.PutUint64(r[40:], ntp.Timestamp(now))
	nts := false
	for ef := req[48:]; len(ef) >= 4; {
		typ, l := binary.BigEndian.Uint16(ef), int(binary.BigEndian.Uint16(ef[2:]))
		if l < 4 || l > len(ef) {
			break
		}
		if typ == 0x0104 { // Unique Identifier (RFC 8915 5.3)
			r = append(r, ef[:l]...)
			nts = true
		}
		ef = ef[l:]
	}
	if nts {
		// NTS Authenticator and Encrypted Extension Fields (RFC 8915
		// 5.6): nonce length, ciphertext length, nonce, ciphertext.
		auth := make([]byte, 4+4+16+16)
		binary.BigEndian.PutUint16(auth[0:], 0x0404)
		binary.BigEndian.PutUint16(auth[2:], uint16(len(auth)))
		binary.BigEndian.PutUint16(auth[4:], 16)
		binary.BigEndian.PutUint16(auth[6:], 16)
		for i := 8; i < len(auth); i++ {
			auth[i] = byte(i * 37)
		}
		r = append(r, auth...)
	}
	return r, nts
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
