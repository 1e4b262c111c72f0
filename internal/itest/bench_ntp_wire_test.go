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
	return pairWire(tsharkRows(b, file, "udp", "frame.time_epoch", "ip.src", "ip.dst", "udp.payload"), utcMinusHost)
}

// pairWire is wireErrors on tshark's rows.
func pairWire(rows []map[string]string, utcMinusHost func(int64) (float64, bool)) wireStamps {
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
	for _, r := range rows {
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
	sd, _ := stddev(v)
	return fmt.Sprintf("%.0f/%.0f", median(v), sd)
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

// TestPairWire: a basic exchange is judged by its own reply's departure,
// an interleaved one by the departure of the earlier reply its request
// names; the truth is taken out; a reply with no request is skipped.
func TestPairWire(t *testing.T) {
	const truth = 250e6 // UTC - host, ns
	at := func(ns int64) string { return fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9) }
	ts := func(hostNS, errNS int64) uint64 { return ntp.Timestamp(time.Unix(0, hostNS+int64(truth)+errNS)) }
	pkt := func(mode byte, origin, rx, tx uint64) string {
		p := make([]byte, ntp.HeaderLen)
		p[0] = 4<<3 | mode
		binary.BigEndian.PutUint64(p[24:], origin)
		binary.BigEndian.PutUint64(p[32:], rx)
		binary.BigEndian.PutUint64(p[40:], tx)
		return hex.EncodeToString(p)
	}
	row := func(ns int64, src, dst, payload string) map[string]string {
		return map[string]string{"frame.time_epoch": at(ns), "ip.src": src, "ip.dst": dst, "udp.payload": payload}
	}
	const c, s = "10.0.0.2", "10.0.0.1"
	t0 := int64(1796000000e9)
	// Exchange 1, basic: received 300 ns late, sent 2000 ns early.
	rx1 := ts(t0+10_000, 300)
	// Exchange 2, interleaved: it carries reply 1's departure, 100 ns late.
	rx2 := ts(t0+1e9+10_000, -50)
	rows := []map[string]string{
		row(t0+50_000, s, c, pkt(ntp.ModeServer, 1, 2, 3)), // a reply to nothing seen
		row(t0+10_000, c, s, pkt(ntp.ModeClient, 0, 0, 111)),
		row(t0+40_000, s, c, pkt(ntp.ModeServer, 111, rx1, ts(t0+40_000, -2000))),
		row(t0+1e9+10_000, c, s, pkt(ntp.ModeClient, rx1, 222, 333)),
		row(t0+1e9+40_000, s, c, pkt(ntp.ModeServer, 222, rx2, ts(t0+40_000, 100))),
	}
	w := pairWire(rows, func(int64) (float64, bool) { return truth, true })
	near := func(got []float64, want ...float64) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1 {
				return false
			}
		}
		return true
	}
	if !near(w.rx, 300, -50) || !near(w.txBasic, -2000) || !near(w.txXleave, 100) {
		t.Errorf("pairs: %+v", w)
	}
}
