package gnss

import (
	"os"
	"path/filepath"
	"reflect"
	"sitegm/hw/gnss/ubx"
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
	f.Add(AppendPUBX04(AppendPUBX04(nil, time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), 18, true), time.Date(2026, 12, 6, 12, 0, 1, 0, time.UTC), 18, false), uint16(9))
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
	health = ubx.Append(health, ubx.ClassMON, ubx.MonRF, append([]byte{0, 2, 0, 0}, make([]byte, 48)...))
	health = ubx.Append(health, ubx.ClassSEC, ubx.SecSig, []byte{1, 0, 0, 0, 0x05, 0, 0, 0, 0x05, 0, 0, 0})
	health = ubx.Append(health, ubx.ClassINF, 1, []byte("antenna\x00 check"))
	// A receiver's answers to configuration (hw/gnss/ubxcfg writes and
	// reads them): MON-VER, a NAK of a VALSET, and a VALSET itself.
	monVer := make([]byte, 70)
	copy(monVer, "ROM SPG 5.10")
	copy(monVer[30:], "00190000")
	copy(monVer[40:], "MOD=ZED-F9T")
	health = ubx.Append(health, ubx.ClassMON, ubx.MonVER, monVer)
	health = ubx.Append(health, ubx.ClassACK, ubx.AckNak, []byte{ubx.ClassCFG, ubx.CfgVALSET})
	health = ubx.Append(health, ubx.ClassCFG, ubx.CfgVALSET, []byte{0, 1, 0, 0, 0x01, 0x00, 0x52, 0x40, 0x00, 0xC2, 0x01, 0x00})
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
