// Command loadgen measures how many requests a time server answers: many
// simulated clients send PTP Delay_Req (or NTP client requests) at a
// rising rate, and each step reports what was sent, what came back and the
// loss. The answer is the highest rate answered with less than a loss
// threshold (0.1 % by default).
//
//	loadgen ptp --target 10.77.0.1 [--multicast] [--domain 0]
//	loadgen ntp --target 10.77.0.1 [--port 123] [--sources 10.99.0.1,10.99.0.2]
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sitegm/hw/udpio"
)

// proto builds requests and recognises replies.
type proto interface {
	// request writes request number seq of client into b.
	request(b []byte, client int, seq uint32) []byte
	// reply returns the sequence number a reply answers, ok false when it
	// is not a reply to us.
	reply(b []byte) (seq uint32, ok bool)
}

// ptpProto sends Delay_Req (IEEE 1588-2019 13.6) and matches Delay_Resp by
// requestingPortIdentity and sequenceId. A sequence number carries 16 bits
// of the step's counter in the sequenceId and the rest in the requesting
// port number, so a reply can be counted exactly once.
type ptpProto struct {
	domain  uint8
	unicast bool
}

func (p ptpProto) request(b []byte, client int, seq uint32) []byte {
	b = b[:44]
	clear(b)
	b[0], b[1] = 0x01, 0x02 // Delay_Req, PTP v2
	binary.BigEndian.PutUint16(b[2:], 44)
	b[4] = p.domain
	if p.unicast {
		b[6] = 0x04 // unicastFlag
	}
	binary.BigEndian.PutUint64(b[20:], 0x4c4f4144fffe0000|uint64(client)&0xffff) // "LOAD" clients
	binary.BigEndian.PutUint16(b[28:], uint16(seq>>16))
	binary.BigEndian.PutUint16(b[30:], uint16(seq))
	b[32], b[33] = 1, 0x7f
	return b
}

func (p ptpProto) reply(b []byte) (uint32, bool) {
	if len(b) < 54 || b[0]&0x0f != 0x09 || b[1]&0x0f != 2 || binary.BigEndian.Uint32(b[44:]) != 0x4c4f4144 {
		return 0, false
	}
	return uint32(binary.BigEndian.Uint16(b[52:]))<<16 | uint32(binary.BigEndian.Uint16(b[30:])), true
}

// ntpProto sends NTPv4 client requests (RFC 5905, 48 bytes, mode 3) with
// the sequence number in the transmit timestamp, which the server echoes as
// the origin timestamp.
type ntpProto struct{}

func (ntpProto) request(b []byte, client int, seq uint32) []byte {
	b = b[:48]
	clear(b)
	b[0] = 0x23 // LI 0, version 4, mode 3
	binary.BigEndian.PutUint32(b[40:], 0x4c4f4144)
	binary.BigEndian.PutUint32(b[44:], seq)
	return b
}

func (ntpProto) reply(b []byte) (uint32, bool) {
	if len(b) < 48 || b[0]&0x07 != 4 || binary.BigEndian.Uint32(b[24:]) != 0x4c4f4144 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[28:]), true
}

// Step is one rate step's result.
type Step struct {
	Rate     int     `json:"rate"`     // asked for, requests a second
	Achieved int     `json:"achieved"` // what the generator managed
	Sent     uint64  `json:"sent"`
	Received uint64  `json:"received"`
	LossPct  float64 `json:"loss_pct"`
}

// Result is the whole run.
type Result struct {
	Target   string  `json:"target"`
	Protocol string  `json:"protocol"`
	Steps    []Step  `json:"steps"`
	MaxRate  int     `json:"max_rate"` // highest achieved rate under the loss threshold
	Loss     float64 `json:"loss_threshold_pct"`
	// GeneratorLimited: the run ended because the generator could not
	// reach the asked rate, so MaxRate is a lower bound.
	GeneratorLimited bool `json:"generator_limited"`
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 || (args[0] != "ptp" && args[0] != "ntp") {
		fmt.Fprintln(os.Stderr, "usage: loadgen ptp|ntp --target ADDR [flags]")
		return 2
	}
	fs := flag.NewFlagSet("loadgen "+args[0], flag.ContinueOnError)
	target := fs.String("target", "", "server IPv4 address")
	port := fs.Int("port", 0, "server port (default 319 for PTP, 123 for NTP)")
	replyPort := fs.Int("reply-port", 320, "PTP: the port Delay_Resp come back to (the general port)")
	multicast := fs.Bool("multicast", false, "PTP: send Delay_Req to 224.0.1.129 (replies come multicast) instead of unicast (hybrid)")
	iface := fs.String("interface", "", "PTP multicast: the interface")
	domain := fs.Int("domain", 0, "PTP domain")
	clients := fs.Int("clients", 256, "simulated clients (source identities)")
	senders := fs.Int("senders", 2, "sending goroutines")
	sockets := fs.Int("sockets", 32, "sending sockets (distinct source ports, as distinct clients have)")
	sources := fs.String("sources", "", "local addresses to send from, comma separated, bound one a socket in turn (many clients behind a router); empty: the default one")
	start := fs.Int("start", 2000, "first rate, requests a second")
	factor := fs.Float64("factor", 1.25, "each step multiplies the rate by this")
	max := fs.Int("max", 2_000_000, "stop at this rate")
	stepDur := fs.Duration("step", 2*time.Second, "duration of a step")
	lossThr := fs.Float64("loss", 0.1, "loss threshold, percent")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *senders < 1 || *sockets < *senders {
		fmt.Fprintln(os.Stderr, "loadgen: need 1 <= --senders <= --sockets")
		return 2
	}
	addr, err := netip.ParseAddr(*target)
	if err != nil && !*multicast {
		fmt.Fprintln(os.Stderr, "loadgen: --target must be an IPv4 address")
		return 2
	}
	var p proto
	dport := *port
	switch args[0] {
	case "ptp":
		p = ptpProto{domain: uint8(*domain), unicast: !*multicast}
		if dport == 0 {
			dport = 319
		}
		if *multicast {
			addr = netip.MustParseAddr("224.0.1.129")
		}
	case "ntp":
		p = ntpProto{}
		if dport == 0 {
			dport = 123
		}
	}
	var srcs []netip.Addr
	for _, f := range strings.Split(*sources, ",") {
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: --sources:", err)
			return 2
		}
		srcs = append(srcs, a)
	}
	dst := netip.AddrPortFrom(addr, uint16(dport))
	res, err := measure(p, args[0], dst, *replyPort, *iface, *multicast, srcs, *clients, *sockets, *senders, *start, *factor, *max, *stepDur, *lossThr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
		return 0
	}
	fmt.Printf("%10s %10s %10s %10s %8s\n", "asked/s", "sent/s", "sent", "answered", "loss %")
	for _, s := range res.Steps {
		fmt.Printf("%10d %10d %10d %10d %8.3f\n", s.Rate, s.Achieved, s.Sent, s.Received, s.LossPct)
	}
	bound := ""
	if res.GeneratorLimited {
		bound = " (at least: the generator could go no faster)"
	}
	fmt.Printf("highest rate with loss under %.2f %%: %d requests/s%s\n", res.Loss, res.MaxRate, bound)
	return 0
}

// measure runs the steps. Requests leave in batches every millisecond
// (sendmmsg) from several sockets; replies are counted by a receiver per
// socket (NTP, unicast PTP to the sender's port) or on the reply port (PTP).
func measure(p proto, name string, dst netip.AddrPort, replyPort int, iface string, multicast bool, srcs []netip.Addr,
	nclients, nsock, nsend, start int, factor float64, maxRate int, stepDur time.Duration, lossThr float64) (Result, error) {
	res := Result{Target: dst.String(), Protocol: name, Loss: lossThr}
	var conns []*udpio.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < nsock; i++ {
		var src netip.Addr
		if len(srcs) > 0 {
			src = srcs[i%len(srcs)]
		}
		c, err := udpio.Listen(udpio.Options{Addr: src, Port: 0, Interface: iface, RecvBuffer: 8 << 20})
		if err != nil {
			return res, err
		}
		conns = append(conns, c)
	}
	// PTP replies go to the general port of our address; NTP replies to
	// the socket that asked.
	readers := conns
	if name == "ptp" {
		o := udpio.Options{Port: replyPort, Interface: iface, RecvBuffer: 16 << 20, ReusePort: true}
		if multicast {
			o.Group = netip.MustParseAddr("224.0.1.129")
		}
		rc, err := udpio.Listen(o)
		if err != nil {
			return res, fmt.Errorf("reply port %d: %w", replyPort, err)
		}
		conns = append(conns, rc)
		readers = []*udpio.Conn{rc}
	}
	var (
		step     atomic.Uint32 // current step number (high byte of seq)
		received [256]atomic.Uint64
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, rc := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms := make([]udpio.Msg, udpio.MaxBatch)
			for ctx.Err() == nil {
				rc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := rc.ReadBatch(ms)
				if err != nil {
					continue
				}
				for _, m := range ms[:n] {
					if seq, ok := p.reply(m.Data); ok {
						received[seq>>24].Add(1)
					}
				}
			}
		}()
	}
	client := 0
	var seq atomic.Uint32
	prevOver := false
	for s, rate := 0, start; rate <= maxRate && s < 255; s++ {
		step.Store(uint32(s))
		var sent atomic.Uint64
		begin := time.Now()
		var sw sync.WaitGroup
		for g := 0; g < nsend; g++ {
			sw.Add(1)
			go func(g int) {
				defer sw.Done()
				sent.Add(sendStep(p, conns[g*nsock/nsend:(g+1)*nsock/nsend], dst, s, &seq, client+g*nclients/nsend, nclients,
					float64(rate)/float64(nsend), begin, stepDur))
			}(g)
		}
		sw.Wait()
		elapsed := time.Since(begin)
		time.Sleep(300 * time.Millisecond) // let the last replies in
		n := sent.Load()
		got := received[s].Load()
		loss := 0.0
		if n > 0 {
			loss = 100 * (1 - float64(got)/float64(n))
		}
		loss = max(loss, 0)
		st := Step{Rate: rate, Achieved: int(float64(n) / elapsed.Seconds()), Sent: n, Received: got, LossPct: loss}
		res.Steps = append(res.Steps, st)
		over := loss >= lossThr
		if !over && st.Achieved > res.MaxRate {
			res.MaxRate = st.Achieved
		}
		if float64(st.Achieved) < 0.9*float64(rate) {
			// The generator itself cannot go faster on this machine (it
			// shares the CPUs with the server): without loss at this step
			// the figure is a lower bound of the server's capacity.
			res.GeneratorLimited = !over
			break
		}
		if over && prevOver {
			break // two steps in a row over the threshold: done
		}
		prevOver = over
		rate = int(float64(rate) * factor)
	}
	cancel()
	wg.Wait()
	return res, nil
}

// sendStep sends at rate requests a second for d from begin, in batches
// every millisecond spread over conns, and returns how many left.
func sendStep(p proto, conns []*udpio.Conn, dst netip.AddrPort, step int, seq *atomic.Uint32,
	client, nclients int, rate float64, begin time.Time, d time.Duration) uint64 {
	outs := make([]udpio.Out, 0, udpio.MaxBatch)
	bufs := make([][64]byte, udpio.MaxBatch)
	var sent uint64
	perTick := rate / 1000
	acc := 0.0
	sock := 0
	for tick := 0; time.Since(begin) < d; tick++ {
		acc += perTick
		n := int(acc)
		acc -= float64(n)
		for n > 0 {
			outs = outs[:0]
			k := min(n, udpio.MaxBatch)
			first := seq.Add(uint32(k)) - uint32(k)
			for i := 0; i < k; i++ {
				b := p.request(bufs[i][:], client, uint32(step)<<24|(first+uint32(i)+1)&0xffffff)
				outs = append(outs, udpio.Out{Data: b, To: dst})
				client = (client + 1) % nclients
			}
			// A generator waits for room rather than drop its own
			// requests (the server's sockets never wait).
			for rest := outs; len(rest) > 0; {
				r := conns[sock].WriteBatch(rest)
				sent += uint64(r.Sent)
				rest = rest[len(rest)-r.Full:]
				if r.Full == 0 || conns[sock].WaitWritable() != nil {
					break
				}
			}
			sock = (sock + 1) % len(conns)
			n -= k
		}
		// Pace on the millisecond; when behind, carry on without sleeping
		// (the achieved rate shows it).
		next := begin.Add(time.Duration(tick+1) * time.Millisecond)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	return sent
}
