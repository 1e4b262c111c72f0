package ubxcfg

import (
	"testing"

	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
)

// FuzzConfigAnswers: what a receiver answers during `sitegm gnss
// configure` (MON-VER, ACK, CFG-VALGET) and what gnss-sim reads
// (CFG-VALSET, CFG-VALGET polls, CFG-PRT) decode without a panic, and a
// decoded VALSET, VALGET poll or VALGET answer encodes back to itself.
func FuzzConfigAnswers(f *testing.F) {
	f.Add(AppendMonVer(nil, "ROM SPG 5.10", "00190000", "PROTVER=34.10", "MOD=ZED-F9T")[6:])
	f.Add(AppendValset(nil, LayerRAM, KeyValue{keyUART1Baud, 115200}, KeyValue{keyTPEnable, 1})[6:])
	f.Add(AppendCfgPrt(nil, 9600, ProtoUBX)[6:])
	f.Add([]byte{0x06, 0x8A})
	f.Add(AppendValgetPoll(nil, GetRAM, keyTPEnable, keyTModeLat)[6:])
	f.Add(AppendValgetAnswer(nil, GetRAM, KeyValue{keyTPEnable, 1}, KeyValue{keyTModeLat, 465000000})[6:])
	f.Add([]byte{1, 0, 0, 0, 0x07, 0, 0x05, 0x10})
	f.Fuzz(func(t *testing.T, p []byte) {
		if v, ok := DecodeMonVer(p); ok && len(v.Ext) != min((len(p)-40)/30, gnss.MaxVersionExtensions) {
			t.Fatalf("%d extensions from %d bytes", len(v.Ext), len(p))
		}
		DecodeCfgPrt(p)
		fr := gnss.Frame{Kind: gnss.FrameUBX, Class: ubx.ClassACK, ID: 1, Data: p}
		DecodeAck(&fr)
		if layers, kv, ok := DecodeValset(p); ok {
			again := AppendValset(nil, layers, kv...)
			if string(again[10:len(again)-2]) != string(p[4:]) {
				t.Fatalf("VALSET % x re-encodes as % x", p, again)
			}
		}
		if layer, keys, ok := DecodeValgetPoll(p); ok {
			if again := AppendValgetPoll(nil, layer, keys...); string(again[10:len(again)-2]) != string(p[4:]) || again[7] != p[1] {
				t.Fatalf("VALGET poll % x re-encodes as % x", p, again)
			}
		}
		if layer, kv, ok := DecodeValgetAnswer(p); ok {
			if again := AppendValgetAnswer(nil, layer, kv...); string(again[10:len(again)-2]) != string(p[4:]) {
				t.Fatalf("VALGET answer % x re-encodes as % x", p, again)
			}
		}
	})
}
