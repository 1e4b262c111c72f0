package ubxcfg

import (
	"testing"

	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
)

// FuzzConfigAnswers: what a receiver answers during `sitegm gnss
// configure` (MON-VER, ACK) and what gnss-sim reads (CFG-VALSET, CFG-PRT)
// decode without a panic, and a decoded VALSET encodes back to itself.
func FuzzConfigAnswers(f *testing.F) {
	f.Add(AppendMonVer(nil, "ROM SPG 5.10", "00190000", "PROTVER=34.10", "MOD=ZED-F9T")[6:])
	f.Add(AppendValset(nil, LayerRAM, KeyValue{keyUART1Baud, 115200}, KeyValue{keyTPEnable, 1})[6:])
	f.Add(AppendCfgPrt(nil, 9600, ProtoUBX)[6:])
	f.Add([]byte{0x06, 0x8A})
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
	})
}
