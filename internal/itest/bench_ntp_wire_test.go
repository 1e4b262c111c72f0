package itest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sitegm/ntp"
)

// wireStamps is one server's own timestamps against the times its
// interface saw the packets (a capture on the server's side of the
// link, on the CLOCK_REALTIME every namespace shares): what the server
// adds to a client's error before the path does. Each is served minus
// seen, in ns, the truth taken out. The capture stamps a received frame
// where the kernel stamps it for the socket (netif_rx), a sent one as it
// is handed to the device, just before the driver's transmit stamp: so
// the receive figure is the server's carrying of its kernel stamp onto
// the served clock, the transmit figures what its transmit timestamp
// misses the departure by (basic: the clock read before the send;
// interleaved: the kernel's stamp of the previous reply).
type wireStamps struct {
	rx, txBasic, txXleave []float64
}

// captureNTP captures on h's eth0 the NTP packets between h and the
// clients, frames of them (requests and replies).
func captureNTP(b *testing.B, h *Host, dir, name string, clients []string, frames int) (file string, p *Proc) {
	b.Helper()
	file = filepath.Join(dir, name+".pcapng")
	filter := "udp port 123 and (host " + strings.Join(clients, " or host ") + ")"
	return file, h.Start(b, "tshark", "-i", "eth0", "-w", file, "-c", fmt.Sprint(frames), "-f", filter)
}

// wireErrors pairs each reply in file with the request it answers (the
// client's last one) and, interleaved, with the earlier reply whose
// transmit time it carries (the one whose receive timestamp the request
// names as its origin); utcMinusHost is the truth at a host time.
func wireErrors(b *testing.B, file string, utcMinusHost func(int64) (float64, bool)) wireStamps {
	b.Helper()
	type request struct {
		at                   int64
		origin, rx, transmit uint64
	}
	last := map[string]request{}
	replyAt := map[string]map[uint64]int64{} // client -> reply's receive timestamp -> when it left
	var w wireStamps
	// served minus seen: an NTP timestamp (UTC) against a host time.
	diff := func(served uint64, seen int64) (float64, bool) {
		truth, ok := utcMinusHost(seen)
		return float64(ntp.ToTime(served).UnixNano()-seen) - truth, ok
	}
	for _, r := range tsharkRows(b, file, "udp", "frame.time_epoch", "ip.src", "ip.dst", "udp.payload") {
		at, ok := epochNS(r["frame.time_epoch"])
		p, err := hex.DecodeString(strings.ReplaceAll(r["udp.payload"], ":", ""))
		if !ok || err != nil || len(p) < ntp.HeaderLen {
			continue
		}
		origin, rx, tx := binary.BigEndian.Uint64(p[24:]), binary.BigEndian.Uint64(p[32:]), binary.BigEndian.Uint64(p[40:])
		switch p[0] & 7 {
		case ntp.ModeClient:
			last[r["ip.src"]] = request{at, origin, rx, tx}
		case ntp.ModeServer:
			c := r["ip.dst"]
			q, ok := last[c]
			if !ok {
				continue
			}
			delete(last, c)
			if replyAt[c] == nil {
				replyAt[c] = map[uint64]int64{}
			}
			replyAt[c][rx] = at
			if e, ok := diff(rx, q.at); ok {
				w.rx = append(w.rx, e)
			}
			switch {
			case origin == q.transmit: // basic: this reply's own departure
				if e, ok := diff(tx, at); ok {
					w.txBasic = append(w.txBasic, e)
				}
			case origin == q.rx: // interleaved: the reply q's origin names
				if prev, ok := replyAt[c][q.origin]; ok {
					if e, ok := diff(tx, prev); ok {
						w.txXleave = append(w.txXleave, e)
					}
				}
			}
		}
	}
	return w
}

// medianSD is v's median and standard deviation ("-" when empty).
func medianSD(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	r, mean := rms(v)
	return fmt.Sprintf("%.0f/%.0f", median(v), math.Sqrt(max(0, r*r-mean*mean)))
}

// String is the three figures, median/sd in ns, with their counts.
func (w wireStamps) String() string {
	return fmt.Sprintf("receive %s (%d), basic transmit %s (%d), interleaved transmit %s (%d)",
		medianSD(w.rx), len(w.rx), medianSD(w.txBasic), len(w.txBasic), medianSD(w.txXleave), len(w.txXleave))
}

// waitCapture waits for a capture to its count.
func waitCapture(b *testing.B, p *Proc, what string) {
	b.Helper()
	if exited, _ := p.Wait(3 * time.Minute); !exited {
		b.Fatalf("the capture of %s did not reach its count", what)
	}
}
