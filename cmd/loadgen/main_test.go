package main

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"

	"sitegm/ptp"
)

// A reply is matched to its request exactly: the 32-bit sequence number
// travels in the Delay_Req's sequenceId and source port number and comes
// back in the Delay_Resp's sequenceId and requestingPortIdentity.
func TestPTPRoundTrip(t *testing.T) {
	p := ptpProto{domain: 3, unicast: true}
	for _, seq := range []uint32{0, 1, 0x0102_0304, 0xff00_00ff} {
		req := p.request(make([]byte, 64), 77, seq)
		if _, _, ok := ptp.CheckHeader(req, 3); !ok {
			t.Fatalf("request %x is not a valid PTP header", req)
		}
		resp := make([]byte, 64)
		n, ok := ptp.AppendDelayResp(resp, req, time.Unix(1, 0), protocol.PortIdentity{ClockIdentity: 1, PortNumber: 1}, -3)
		if !ok {
			t.Fatal("server refused the request")
		}
		got, ok := p.reply(resp[:n])
		if !ok || got != seq {
			t.Errorf("seq %#x: reply gives %#x %v", seq, got, ok)
		}
		if resp[6]&0x04 == 0 {
			t.Error("unicast flag not echoed")
		}
	}
}

func TestNTPRoundTrip(t *testing.T) {
	var p ntpProto
	req := p.request(make([]byte, 64), 0, 0xdeadbeef)
	resp := make([]byte, 48)
	resp[0] = 0x24 // version 4, server
	copy(resp[24:32], req[40:48])
	if got, ok := p.reply(resp); !ok || got != 0xdeadbeef {
		t.Errorf("got %#x %v", got, ok)
	}
	binary.BigEndian.PutUint32(resp[24:], 0)
	if _, ok := p.reply(resp); ok {
		t.Error("a reply to someone else's request was counted")
	}
}
