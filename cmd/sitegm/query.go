package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sitegm/ntp"
	"strconv"
	"time"

	"github.com/facebook/time/ntp/ntske"
	"github.com/facebook/time/ntp/protocol"
)

// cmdNTPQuery sends one NTP client request and prints what came back:
// a check of sitegm (or any server) from a site laptop or the demo, with
// no NTP package installed and no clock touched.
func cmdNTPQuery(args []string) int {
	fs := flag.NewFlagSet("ntp-query", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the reply")
	nts := fs.Bool("nts", false, "authenticate with NTS (RFC 8915): NTS-KE first, then an authenticated request")
	ca := fs.String("ca", "", "with --nts: trust only this CA (PEM) for the NTS-KE certificate (default: the system's)")
	kePort := fs.Int("ke-port", 4460, "with --nts: the NTS-KE port")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sitegm ntp-query [--nts [--ca FILE] [--ke-port N]] HOST[:PORT]")
		return 2
	}
	addr := fs.Arg(0)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "123")
	}
	var sess *ntp.NTSSession
	if *nts {
		var err error
		if sess, addr, err = ntsKE(addr, *ca, *kePort, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "sitegm ntp-query: NTS-KE:", err)
			return 1
		}
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query:", err)
		return 1
	}
	defer c.Close()
	req := make([]byte, 1500)
	t1 := time.Now()
	tx := ntp.Timestamp(t1)
	n := ntp.Request(req, tx)
	var uid []byte
	if sess != nil {
		var err error
		if n, uid, err = sess.NTSRequest(req, tx, rand.Reader); err != nil {
			fmt.Fprintln(os.Stderr, "sitegm ntp-query:", err)
			return 1
		}
	}
	if _, err := c.Write(req[:n]); err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query:", err)
		return 1
	}
	c.SetReadDeadline(time.Now().Add(*timeout))
	buf := make([]byte, 1500)
	n, err = c.Read(buf)
	t4 := time.Now()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query: no reply:", err)
		return 1
	}
	if sess != nil {
		var kiss ntp.KissError
		if _, err := sess.ParseNTSReply(buf[:n], tx, uid); err != nil && !errors.As(err, &kiss) {
			fmt.Fprintln(os.Stderr, "sitegm ntp-query: the reply is not authenticated:", err)
			return 1
		}
	}
	var p protocol.Packet
	if err := p.UnmarshalBinary(buf[:n]); err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query: bad reply:", err)
		return 1
	}
	t2, t3 := protocol.Unix(p.RxTimeSec, p.RxTimeFrac), protocol.Unix(p.TxTimeSec, p.TxTimeFrac)
	offset := time.Duration(protocol.Offset(t1, t2, t3, t4))
	delay := time.Duration(protocol.RoundTripDelay(t1, t2, t3, t4))
	refid := make([]byte, 4)
	binary.BigEndian.PutUint32(refid, p.ReferenceID)
	// RFC 5905 7.3: a stratum 1 server's refid is ASCII, a secondary
	// server's its system peer's IPv4 address (or an IPv6 hash).
	ref := fmt.Sprintf("%q", string(refid))
	if p.Stratum >= 2 && p.Stratum <= 15 {
		ref = net.IP(refid).String()
	}
	fmt.Printf("%s: stratum %d, leap %d, refid %s, root delay %s, root dispersion %s, precision 2^%d s\n", addr, p.Stratum, p.Settings>>6,
		ref, time.Duration(uint64(p.RootDelay)*uint64(time.Second)>>16), time.Duration(uint64(p.RootDispersion)*uint64(time.Second)>>16), p.Precision)
	fmt.Printf("offset %s (server - this host), delay %s\n", offset, delay)
	if sess != nil {
		fmt.Printf("NTS: authenticated (AES-SIV-CMAC-256), %d fresh cookies\n", len(sess.Cookies))
	}
	if p.Settings>>6 == 3 {
		fmt.Println("the server says it is not synchronized (LI 3): clients will not follow it")
	}
	return 0
}

// ntsKE runs NTS-KE with the server of addr (HOST:PORT) on kePort and
// returns the session and the NTP address to ask (the server's own
// negotiation records, else addr).
func ntsKE(addr, ca string, kePort int, timeout time.Duration) (*ntp.NTSSession, string, error) {
	host, port, _ := net.SplitHostPort(addr)
	conf, err := ntske.ClientTLSConfig(ca)
	if err != nil {
		return nil, "", err
	}
	conf.ServerName = host
	cl := &ntske.Client{SupportedAEAD: []uint16{uint16(protocol.AEADAESSIVCMAC256)}, Timeout: timeout}
	res, err := cl.Handshake(context.Background(), net.JoinHostPort(host, strconv.Itoa(kePort)), conf)
	if err != nil {
		return nil, "", err
	}
	if res.NTPServer != "" {
		host = res.NTPServer
	}
	if res.NTPPort != 0 {
		port = strconv.Itoa(int(res.NTPPort))
	}
	fmt.Printf("NTS-KE: %d cookies from %s\n", len(res.Cookies), net.JoinHostPort(host, strconv.Itoa(kePort)))
	return &ntp.NTSSession{C2S: res.C2S, S2C: res.S2C, Cookies: res.Cookies}, net.JoinHostPort(host, port), nil
}
