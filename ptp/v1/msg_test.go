package v1

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

// Golden vectors built byte by byte from Wireshark's offsets by a separate
// script (not by this package): a Sync and Follow_Up with the field values
// of a Dante leader's (Sync every 250 ms, ASSIST|BOUNDARY_CLOCK), and a
// Delay_Resp.
const (
	goldenSync = "000100015f44464c5400000000000000000000000101001dc10802140002b27a0000000c00000000000844ab19e18668000000250001001dc10802140000b27a0000000444464c540000f06000010001000000fe0000f060000000000000000444464c540001001dc1080214000000020000fff90000000000000000"
	goldenFU   = "000100015f44464c5400000000000000000000000201001dc10802140002b27a0200000c000000000000b27a000844ab19e6d3a3"
	goldenDR   = "000100015f44464c5400000000000000000000000201001dc10802140002010203000000000000006553f100075bcd1500010a0b0c0d0e0f00010102"
)

var dante = UUID{0x00, 0x1d, 0xc1, 0x08, 0x02, 0x14}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func danteHeader(typ, ctl uint8, seq, flags uint16) Header {
	sub, _, _ := ParseSubdomain("_DFLT")
	return Header{VersionNetwork: 1, Subdomain: sub, MessageType: typ, SourceTech: 1, SourceUUID: dante,
		SourcePort: 2, Sequence: seq, Control: ctl, Flags: flags}
}

func TestGoldenSync(t *testing.T) {
	want := Sync{
		Header: danteHeader(EventMessage, CtlSync, 0xb27a, FlagAssist|FlagBoundaryClock),
		Origin: Timestamp{541867, 434210408}, CurrentUTCOffset: 37,
		GMTech: 1, GMUUID: dante, GMSequence: 0xb27a, GMStratum: 4, GMIdentifier: [4]byte{'D', 'F', 'L', 'T'},
		GMVariance: -4000, GMPreferred: true, GMIsBoundary: true, SyncInterval: -2,
		LocalVariance: -4000, LocalStratum: 4, LocalIdentifier: [4]byte{'D', 'F', 'L', 'T'},
		ParentTech: 1, ParentUUID: dante, ParentPort: 2, EstMasterVariance: -7,
	}
	b := unhex(t, goldenSync)
	var got Sync
	if err := got.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("decoded\n got %+v\nwant %+v", got, want)
	}
	out := make([]byte, SyncLen)
	if n := want.MarshalTo(out); !bytes.Equal(out[:n], b) {
		t.Errorf("encoded\n got %x\nwant %x", out[:n], b)
	}
}

func TestGoldenFollowUp(t *testing.T) {
	want := FollowUp{Header: danteHeader(GeneralMessage, CtlFollowUp, 0xb27a, FlagAssist|FlagBoundaryClock),
		AssociatedSequence: 0xb27a, Precise: Timestamp{541867, 434557859}}
	b := unhex(t, goldenFU)
	var got FollowUp
	if err := got.Unmarshal(b); err != nil || got != want {
		t.Errorf("decoded %+v %v", got, err)
	}
	out := make([]byte, FollowUpLen)
	if n := want.MarshalTo(out); !bytes.Equal(out[:n], b) {
		t.Errorf("encoded\n got %x\nwant %x", out[:n], b)
	}
}

func TestGoldenDelayResp(t *testing.T) {
	want := DelayResp{Header: danteHeader(GeneralMessage, CtlDelayResp, 0x0102, 0),
		Receipt: Timestamp{1700000000, 123456789}, ReqTech: 1, ReqUUID: UUID{10, 11, 12, 13, 14, 15}, ReqPort: 1, ReqSequence: 0x0102}
	b := unhex(t, goldenDR)
	var got DelayResp
	if err := got.Unmarshal(b); err != nil || got != want {
		t.Errorf("decoded %+v %v", got, err)
	}
	out := make([]byte, DelayRespLen)
	if n := want.MarshalTo(out); !bytes.Equal(out[:n], b) {
		t.Errorf("encoded\n got %x\nwant %x", out[:n], b)
	}
}

func TestDecoderRejects(t *testing.T) {
	sync := unhex(t, goldenSync)
	v2 := append([]byte{0x00, 0x02}, sync[2:]...)
	wrongType := bytes.Clone(sync)
	wrongType[20] = GeneralMessage
	badCtl := bytes.Clone(sync)
	badCtl[32] = 9
	for name, b := range map[string][]byte{
		"short header": sync[:39], "short sync": sync[:100], "v2": v2, "type/control": wrongType, "control": badCtl,
	} {
		var s Sync
		if err := s.Unmarshal(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var f FollowUp
	if f.Unmarshal(sync) == nil {
		t.Error("a Sync decoded as a Follow_Up")
	}
}

func TestTimestampEpoch(t *testing.T) {
	at := time.Unix(1<<32+5, 7)
	ts, ep := NewTimestamp(at)
	if ts.Seconds != 5 || ts.Nanoseconds != 7 || ep != 1 || !ts.Time(ep).Equal(at) {
		t.Errorf("%+v epoch %d", ts, ep)
	}
}

func TestSubdomains(t *testing.T) {
	for name, last := range map[string]byte{"_DFLT": 129, "_ALT1": 130, "_ALT2": 131, "_ALT3": 132} {
		s, g, ok := ParseSubdomain(name)
		if !ok || g != last || s.String() != name {
			t.Errorf("%s: %v %d %v", name, s, g, ok)
		}
	}
	if _, _, ok := ParseSubdomain("_ALT4"); ok {
		t.Error("_ALT4 accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{goldenSync, goldenFU, goldenDR} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Add(make([]byte, ManagementLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sync
		var fu FollowUp
		var d DelayResp
		if s.Unmarshal(b) == nil {
			out := make([]byte, SyncLen)
			s.MarshalTo(out)
			var again Sync
			if again.Unmarshal(out) != nil || again != s {
				t.Fatalf("Sync round trip: %+v vs %+v", s, again)
			}
		}
		fu.Unmarshal(b)
		d.Unmarshal(b)
		// The port's receive path too: never a panic, always counted.
		p, _ := New(Config{Interface: "x", Subdomain: "_DFLT", LogSync: -2, UUID: UUID{2}}, time.Unix(0, 0))
		p.Receive(b, time.Unix(100, 0), time.Unix(100, 0))
		p.Tick(time.Unix(200, 0))
	})
}
