package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/facebook/time/ntp/protocol"
)

// cmdNTPQuery sends one NTP client request and prints what came back:
// a check of sitegm (or any server) from a site laptop or the demo, with
// no NTP package installed and no clock touched.
func cmdNTPQuery(args []string) int {
	fs := flag.NewFlagSet("ntp-query", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the reply")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sitegm ntp-query HOST[:PORT]")
		return 2
	}
	addr := fs.Arg(0)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "123")
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query:", err)
		return 1
	}
	defer c.Close()
	req := make([]byte, protocol.PacketSizeBytes)
	req[0] = 4<<3 | 3 // NTPv4, client
	t1 := time.Now()
	s, f := protocol.Time(t1)
	binary.BigEndian.PutUint32(req[40:], s)
	binary.BigEndian.PutUint32(req[44:], f)
	if _, err := c.Write(req); err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query:", err)
		return 1
	}
	c.SetReadDeadline(time.Now().Add(*timeout))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	t4 := time.Now()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitegm ntp-query: no reply:", err)
		return 1
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
	if p.Settings>>6 == 3 {
		fmt.Println("the server says it is not synchronized (LI 3): clients will not follow it")
	}
	return 0
}
