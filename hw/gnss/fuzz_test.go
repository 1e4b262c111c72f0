package gnss

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzDecoder: any byte stream is decoded without a panic, every dropped
// byte is counted, and the result does not depend on how the stream was cut
// into reads.
func FuzzDecoder(f *testing.F) {
	for _, name := range []string{"neo-m8n.log", "ublox-zed-f9t-ubx_nmea_l5.log", "ac12_binary.log", "nmea-fuzzy-cases.log", "hemi.log",
		"ublox-neo-m8t-s.log", "ublox-zed-f9p-hp.log", "ublox-aek-4t.log"} {
		if data, err := os.ReadFile(filepath.Join(capturesDir, name)); err == nil {
			if len(data) > 4096 {
				data = data[:4096]
			}
			f.Add(data, uint16(100))
		}
	}
	f.Add([]byte(nmea("GPRMC,235960,A,,,,,,,311216,,,A")+nmea("GPGGA,235960,,,,,1,00,,,M,,M,,")), uint16(7))
	f.Add([]byte("\xb5\x62\x0d\x01\x10\x00"+nmea("GPZDA,120000,01,01,2020,00,00")), uint16(3))
	f.Add([]byte("\xa0\xa2\x00\x02\x24\x24\x00\x48\xb0\xb3$GPTXT,01,01,02,hi*4F\r\n"), uint16(12))
	// Synthetic UBX: one navigation epoch of every kind the decoder reads,
	// the health messages, and the configuration dialogue's frames.
	ep := SimEpoch{Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Valid: true, Sats: 9}
	var nav []byte
	nav = AppendNavPVT(nav, ep, 18, 20)
	nav = AppendNavTimeUTC(nav, ep, 18, 20, true)
	nav = AppendNavTimeGPS(nav, ep, 18, true)
	nav = AppendNavSol(nav, ep, 18)
	nav = AppendNavStatus(nav, ep, 18, 2)
	nav = AppendNavTimeLS(nav, 18, 1, 3600)
	nav = AppendTimTP(nav, ep.Time.Add(time.Second), -1200)
	nav = AppendNavEOE(nav, ep, 18)
	f.Add(nav, uint16(50))
	var health []byte
	health = AppendMonHW(health, AntennaShort, JammingCritical, 250)
	health = AppendTimSVIN(health, Survey{Active: true, Duration: time.Minute, Observations: 60, MeanAcc: 4})
	health = AppendUBX(health, ubxClassMON, ubxMonRF, append([]byte{0, 2, 0, 0}, make([]byte, 48)...))
	health = AppendUBX(health, ubxClassSEC, ubxSecSig, []byte{1, 0, 0, 0, 0x05, 0, 0, 0, 0x05, 0, 0, 0})
	health = AppendUBX(health, ubxClassINF, 1, []byte("antenna\x00 check"))
	health = AppendMonVer(health, "ROM SPG 5.10", "00190000", "MOD=ZED-F9T")
	health = AppendAck(health, ubxClassCFG, ubxCfgVALSET, false)
	health = AppendValset(health, LayerRAM, KeyValue{keyUART1Baud, 115200})
	f.Add(health, uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		at := time.Unix(0, 0)
		one := NewDecoder(Options{DateFloor: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)})
		a := append([]Event(nil), one.Feed(data, at)...)
		a = append(a, one.Flush(at)...)

		two := NewDecoder(Options{DateFloor: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)})
		c := int(cut) % (len(data) + 1)
		b := append([]Event(nil), two.Feed(data[:c], at)...)
		b = append(b, two.Feed(data[c:], at)...)
		b = append(b, two.Flush(at)...)

		if !reflect.DeepEqual(a, b) {
			t.Fatalf("chunking changed the result:\n%v\n%v", a, b)
		}
		fs := one.FramerStats()
		if fs.Bytes != uint64(len(data)) || fs.Skipped > fs.Bytes {
			t.Fatalf("stats %+v for %d bytes", fs, len(data))
		}
		var sum uint64
		for _, n := range fs.Rejects {
			sum += n
		}
		if sum != fs.Skipped {
			t.Fatalf("rejects %v do not add up to skipped %d", fs.Rejects, fs.Skipped)
		}
		for _, ev := range a {
			if r, ok := ev.(Report); ok && r.HasDate && r.Time.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("report before the date floor: %+v", r)
			}
		}
	})
}

// FuzzConfigAnswers: what a receiver answers during `sitegm gnss
// configure` (MON-VER, ACK) and what gnss-sim reads (CFG-VALSET, CFG-PRT)
// decode without a panic, and a decoded VALSET encodes back to itself.
func FuzzConfigAnswers(f *testing.F) {
	f.Add(AppendMonVer(nil, "ROM SPG 5.10", "00190000", "PROTVER=34.10", "MOD=ZED-F9T")[6:])
	f.Add(AppendValset(nil, LayerRAM, KeyValue{keyUART1Baud, 115200}, KeyValue{keyTPEnable, 1})[6:])
	f.Add(AppendCfgPrt(nil, 9600, ProtoUBX)[6:])
	f.Add([]byte{0x06, 0x8A})
	f.Fuzz(func(t *testing.T, p []byte) {
		if v, ok := DecodeMonVer(p); ok && len(v.Ext) != (len(p)-40)/30 {
			t.Fatalf("%d extensions from %d bytes", len(v.Ext), len(p))
		}
		DecodeCfgPrt(p)
		fr := Frame{Kind: FrameUBX, Class: ubxClassACK, ID: 1, Data: p}
		DecodeAck(&fr)
		if layers, kv, ok := DecodeValset(p); ok {
			again := AppendValset(nil, layers, kv...)
			if string(again[10:len(again)-2]) != string(p[4:]) {
				t.Fatalf("VALSET % x re-encodes as % x", p, again)
			}
		}
	})
}
