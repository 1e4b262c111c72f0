package ubxcfg

import (
	"bytes"
	"encoding/binary"
	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
	"strings"
	"testing"
	"time"
)

// frames splits a byte stream into its UBX frames.
func ubxFrames(t *testing.T, b []byte) []gnss.Frame {
	t.Helper()
	var out []gnss.Frame
	f := gnss.NewFramer(func(fr *gnss.Frame) {
		c := *fr
		c.Data = append([]byte(nil), fr.Data...)
		out = append(out, c)
	})
	f.Write(b, time.Unix(0, 0))
	if f.Stats.Skipped != 0 {
		t.Fatalf("%d bytes not framed", f.Stats.Skipped)
	}
	return out
}

func TestMonVerGenerations(t *testing.T) {
	for _, c := range []struct {
		hw  string
		ext []string
		gen int
		mod string
	}{
		{"00040007", nil, 6, ""},
		{"00080000", []string{"PROTVER=20.30", "MOD=NEO-M8T"}, 8, "NEO-M8T"},
		{"00190000", []string{"FWVER=TIM 2.20", "PROTVER=29.20", "MOD=ZED-F9T"}, 9, "ZED-F9T"},
		{"000A0000", []string{"PROTVER=34.10"}, 10, ""},
		{"00300000", nil, 9, ""},                          // newer than this table: configuration interface
		{"00080000", []string{"PROTVER=27.11"}, 9, ""},    // protocol 27+ is generation 9 firmware
		{"00040001", []string{"MOD=LEA-4T"}, 0, "LEA-4T"}, // Antaris 4: not configured here
	} {
		fr := ubxFrames(t, AppendMonVer(nil, "ROM CORE 3.01", c.hw, c.ext...))
		if len(fr) != 1 || !IsMonVer(&fr[0]) {
			t.Fatalf("%s: not a MON-VER", c.hw)
		}
		v, ok := DecodeMonVer(fr[0].Data)
		if !ok || v.Gen != c.gen || v.Module != c.mod || v.SW != "ROM CORE 3.01" {
			t.Errorf("%s %v: %+v", c.hw, c.ext, v)
		}
		if _, err := PlanConfig(v, ConfigOptions{Outputs: "both", PulseLength: 100 * time.Millisecond}); (err != nil) != (c.gen < 6) {
			t.Errorf("%s: plan error %v", c.hw, err)
		}
	}
	if _, ok := DecodeMonVer(make([]byte, 41)); ok {
		t.Error("a 41-byte MON-VER decoded")
	}
}

func TestValsetRoundTrip(t *testing.T) {
	kv := []KeyValue{{keyTPEnable, 1}, {keyRateMeas, 1000}, {keyTModeLatHP, 0xF6}, {keyUART1Baud, 115200}, {0x50000001, 1 << 40}}
	fr := ubxFrames(t, AppendValset(nil, LayerRAM|LayerFlash, kv...))
	layers, got, ok := DecodeValset(fr[0].Data)
	if !ok || layers != 5 || len(got) != len(kv) {
		t.Fatalf("%v %d %v", ok, layers, got)
	}
	for i := range kv {
		if got[i] != kv[i] {
			t.Errorf("item %d: %#x want %#x", i, got[i], kv[i])
		}
	}
	for _, bad := range [][]byte{{0, 1, 0}, {0, 1, 0, 0, 1, 0, 0x05}, {0, 1, 0, 0, 1, 0, 0, 0x70, 1}, {9, 1, 0, 0}} {
		if _, _, ok := DecodeValset(bad); ok {
			t.Errorf("% x decoded", bad)
		}
	}
}

// TestPlanConfig: the frames for each generation carry the settings asked
// for, in the documented layouts, in an order the receiver can still
// acknowledge.
func TestPlanConfig(t *testing.T) {
	o := ConfigOptions{Outputs: "ubx", CurrentBaud: 9600, Baud: 115200, PulseLength: 100 * time.Millisecond, OnlyLocked: true,
		Timing: TimingSurveyIn, SurveyMin: 300 * time.Second, SurveyAcc: 2, Save: true}
	f9 := ReceiverVersion{HW: "00190000", Gen: 9, Module: "ZED-F9T"}
	steps, err := PlanConfig(f9, o)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]uint64{}
	for i, s := range steps {
		fr := ubxFrames(t, s.Frame)
		if fr[0].Class != ubx.ClassCFG || fr[0].ID != ubx.CfgVALSET || s.Class != ubx.ClassCFG || s.ID != ubx.CfgVALSET {
			t.Fatalf("step %d %s: not a VALSET", i, s.Meaning)
		}
		layers, kv, ok := DecodeValset(fr[0].Data)
		if !ok || layers != 7 {
			t.Fatalf("step %d: layers %d", i, layers)
		}
		for _, x := range kv {
			got[x.Key] = x.Value
		}
		if s.NewBaud != 0 && i != len(steps)-1 {
			t.Errorf("the baud change is step %d of %d: later answers would be lost", i, len(steps))
		}
	}
	want := map[uint32]uint64{0x20910007: 1, 0x2091005c: 1, 0x2091017e: 1, 0x2091035a: 1, 0x209100ac: 0, 0x209100c5: 0,
		keyUART1OutUBX: 1, keyUART1OutNMEA: 0, keyUART1InUBX: 1, keyUART1Baud: 115200,
		keyTPLen: 0, keyTPLenLock: 100000, keyTPPeriodLock: 1e6, keyTPPolarity: 1, keyTPTimeGrid: 0, keyTPAlignTOW: 1,
		keyTModeMode: 1, keyTModeSvinMin: 300, keyTModeSvinAccLm: 20000, keyRateMeas: 1000,
		keyTPAntCableDelay: 0} // always written: the receiver's 50 ns default is not left to add to sitegm's
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("key %#08x = %d (set %v), want %d", k, g, ok, v)
		}
	}
	if _, ok := got[0x209101b5]; ok {
		t.Error("MON-HW enabled on generation 9 (MON-RF replaces it)")
	}

	// Fixed position, generation 9: latitude in 1e-7 plus 1e-9 degrees.
	o.Timing, o.Lat, o.Lon, o.Height, o.FixedAcc = TimingFixed, 46.123456789, -7.987654321, 1234.5678, 0.05
	steps, _ = PlanConfig(f9, o)
	for _, s := range steps {
		if s.Setting != "timing mode" {
			continue
		}
		_, kv, _ := DecodeValset(ubxFrames(t, s.Frame)[0].Data)
		m := map[uint32]uint64{}
		for _, x := range kv {
			m[x.Key] = x.Value
		}
		lat := float64(int32(m[keyTModeLat]))*1e-7 + float64(int8(m[keyTModeLatHP]))*1e-9
		lon := float64(int32(m[keyTModeLon]))*1e-7 + float64(int8(m[keyTModeLonHP]))*1e-9
		h := float64(int32(m[keyTModeHeight]))/100 + float64(int8(m[keyTModeHeightHP]))/1e4
		if d := lat - 46.123456789; d > 1e-10 || d < -1e-10 || lon+7.987654321 > 1e-10 || lon+7.987654321 < -1e-10 || h-1234.5678 > 1e-6 || h-1234.5678 < -1e-6 || m[keyTModeFixedAcc] != 500 {
			t.Errorf("fixed position %.10f %.10f %.5f acc %d", lat, lon, h, m[keyTModeFixedAcc])
		}
	}

	// Generation 8: legacy messages; the port, then the save, last.
	m8 := ReceiverVersion{HW: "00080000", Gen: 8, Module: "NEO-M8T"}
	o.Timing, o.Outputs = TimingSurveyIn, "both"
	steps, _ = PlanConfig(m8, o)
	var names []string
	for _, s := range steps {
		fr := ubxFrames(t, s.Frame)[0]
		names = append(names, UBXName(fr.Class, fr.ID))
		switch {
		case fr.ID == ubx.CfgTP5:
			le := binary.LittleEndian
			if le.Uint32(fr.Data[16:]) != 0 || le.Uint32(fr.Data[20:]) != 100000 || le.Uint32(fr.Data[28:])&0x77 != 0x77 {
				t.Errorf("TP5 % x", fr.Data)
			}
		case fr.ID == ubx.CfgTMODE2:
			if fr.Data[0] != 1 || binary.LittleEndian.Uint32(fr.Data[20:]) != 300 || binary.LittleEndian.Uint32(fr.Data[24:]) != 2000 {
				t.Errorf("TMODE2 % x", fr.Data)
			}
		case fr.ID == ubx.CfgPRT:
			baud, out, ok := DecodeCfgPrt(fr.Data)
			if !ok || baud != 115200 || out != ProtoUBX|ProtoNMEA || s.NewBaud != 115200 {
				t.Errorf("PRT %d %x", baud, out)
			}
		}
	}
	joined := strings.Join(names, " ")
	if !strings.HasSuffix(joined, "UBX-CFG-PRT UBX-CFG-CFG") || !strings.Contains(joined, "UBX-CFG-TMODE2") || strings.Contains(joined, "VALSET") {
		t.Errorf("generation 8 plan: %s", joined)
	}
	// NMEA only: nothing after the port change can be acknowledged.
	o.Outputs = "nmea"
	steps, _ = PlanConfig(m8, o)
	for _, s := range steps {
		if (s.Setting == "outputs" || s.Setting == "save") != s.NoAck {
			t.Errorf("%s: NoAck %v", s.Meaning, s.NoAck)
		}
		if bytes.Contains([]byte(s.Meaning), []byte("UBX-NAV")) {
			t.Errorf("NMEA only, yet %s", s.Meaning)
		}
	}
	for _, bad := range []ConfigOptions{{Outputs: "all", PulseLength: time.Millisecond}, {Outputs: "ubx"},
		{Outputs: "ubx", PulseLength: time.Millisecond, Timing: TimingFixed, Lat: 95, FixedAcc: 1},
		{Outputs: "ubx", PulseLength: time.Millisecond, Timing: TimingSurveyIn}} {
		if _, err := PlanConfig(m8, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestEcef(t *testing.T) {
	// The equator at the prime meridian is one semi-major axis out; the
	// pole one semi-minor axis up.
	x, y, z := ecef(0, 0, 0)
	if x != 6378137 || y != 0 || z != 0 {
		t.Errorf("%f %f %f", x, y, z)
	}
	if _, _, z := ecef(90, 0, 0); z < 6356752.31 || z > 6356752.32 {
		t.Errorf("pole %f", z)
	}
}

// The receiver compensates the cable when asked: CFG-TP-ANT_CABLEDELAY
// (generation 9) or CFG-TP5's antCableDelay at offset 4 (legacy), I2 ns;
// beyond 16 bits it is refused.
func TestCableDelayWritten(t *testing.T) {
	o := ConfigOptions{Outputs: "ubx", CurrentBaud: 9600, PulseLength: 100 * time.Millisecond, Timing: TimingKeep, CableDelay: 152 * time.Nanosecond}
	for _, gen := range []int{8, 9} {
		steps, err := PlanConfig(ReceiverVersion{Gen: gen}, o)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range steps {
			if s.Setting != "time pulse" {
				continue
			}
			found = strings.Contains(s.Meaning, "cable delay of 152ns")
			p := s.Frame[6 : len(s.Frame)-2]
			if gen == 8 && int16(binary.LittleEndian.Uint16(p[4:])) != 152 {
				t.Errorf("CFG-TP5 antCableDelay % x", p[4:6])
			}
			if gen == 9 {
				_, kv, _ := DecodeValset(p)
				ok := false
				for _, x := range kv {
					ok = ok || (x.Key == keyTPAntCableDelay && x.Value == 152)
				}
				if !ok {
					t.Errorf("VALSET without ANT_CABLEDELAY 152: %v", kv)
				}
			}
		}
		if !found {
			t.Errorf("generation %d: the time pulse step does not say the receiver compensates the cable", gen)
		}
	}
	o.CableDelay = 40 * time.Microsecond
	if _, err := PlanConfig(ReceiverVersion{Gen: 9}, o); err == nil {
		t.Error("a cable delay beyond 16 bits of ns planned")
	}
}
