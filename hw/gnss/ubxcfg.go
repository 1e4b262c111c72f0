package gnss

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Configuring a u-blox receiver for timing, without I/O: which frames to
// send for which generation, and what the answers mean. `sitegm gnss
// configure` sends them over the serial port; gnss-sim answers them.
//
// Sources: the u-blox 6 and u-blox 8/M8 receiver descriptions (legacy
// UBX-CFG-PRT, -MSG, -TP5, -TMODE, -TMODE2, -RATE, -CFG) and the ZED-F9T
// / M10 interface descriptions (UBX-CFG-VALSET and its configuration
// keys; the legacy messages are deprecated there).

// ReceiverVersion is what UBX-MON-VER says: software and hardware
// version, then 30-character extension strings ("PROTVER=34.10",
// "MOD=ZED-F9T", "FWVER=TIM 2.20").
type ReceiverVersion struct {
	SW, HW  string
	Ext     []string
	Module  string // from MOD=, "" when not told
	ProtVer string // from PROTVER=, "" when not told
	// Gen is the u-blox generation: 6, 7, 8 (M8), 9 (F9/M9), 10 (M10)
	// or more; 0 when the hardware version is unknown.
	Gen int
}

// UBXPoll returns a poll frame (empty payload) for class/id.
func UBXPoll(class, id byte) []byte { return AppendUBX(nil, class, id, nil) }

// MonVerPoll is the frame that asks for UBX-MON-VER.
func MonVerPoll() []byte { return UBXPoll(ubxClassMON, ubxMonVER) }

// IsMonVer says whether fr is a MON-VER answer.
func IsMonVer(fr *Frame) bool {
	return fr.Kind == FrameUBX && fr.Class == ubxClassMON && fr.ID == ubxMonVER && len(fr.Data) >= 40
}

// hwGenerations maps MON-VER hwVersion to the generation (the receiver
// descriptions list these values).
var hwGenerations = map[string]int{
	"00040005": 5, "00040007": 6, "00070000": 7, "00080000": 8,
	"00190000": 9, "000A0000": 10, "000B0000": 20,
}

// DecodeMonVer reads a MON-VER payload: 30 + 10 bytes, then any number
// of 30-byte extensions, each NUL-padded.
func DecodeMonVer(p []byte) (ReceiverVersion, bool) {
	if len(p) < 40 || (len(p)-40)%30 != 0 {
		return ReceiverVersion{}, false
	}
	str := func(b []byte) string {
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		return strings.TrimSpace(printable(b))
	}
	v := ReceiverVersion{SW: str(p[:30]), HW: str(p[30:40])}
	for i := 40; i+30 <= len(p); i += 30 {
		e := str(p[i : i+30])
		v.Ext = append(v.Ext, e)
		if m, ok := strings.CutPrefix(e, "MOD="); ok {
			v.Module = m
		}
		if m, ok := strings.CutPrefix(e, "PROTVER="); ok {
			v.ProtVer = m
		}
	}
	v.Gen = hwGenerations[strings.ToUpper(v.HW)]
	if v.Gen == 0 {
		// A hardware version this table does not know: one newer than
		// 00190000 speaks the configuration interface of generation 9+.
		if n, err := strconv.ParseUint(v.HW, 16, 32); err == nil && n > 0x00190000 {
			v.Gen = 9
		}
	}
	if pv, err := strconv.ParseFloat(v.ProtVer, 64); err == nil && pv >= 27 && v.Gen < 9 {
		v.Gen = 9 // protocol 27+ is F9/M9 firmware
	}
	return v, true
}

func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7F {
			out = append(out, c)
		}
	}
	return string(out)
}

// AppendMonVer appends a MON-VER answer (gnss-sim, tests).
func AppendMonVer(dst []byte, sw, hw string, ext ...string) []byte {
	p := make([]byte, 40+30*len(ext))
	copy(p[:29], sw)
	copy(p[30:39], hw)
	for i, e := range ext {
		copy(p[40+30*i:40+30*i+29], e)
	}
	return AppendUBX(dst, ubxClassMON, ubxMonVER, p)
}

// Ack is an UBX-ACK-ACK (OK) or -NAK for the message Class/ID.
type Ack struct {
	Class, ID byte
	OK        bool
}

// DecodeAck reads an ACK-ACK or ACK-NAK frame.
func DecodeAck(fr *Frame) (Ack, bool) {
	if fr.Kind != FrameUBX || fr.Class != ubxClassACK || fr.ID > ubxAckAck || len(fr.Data) < 2 {
		return Ack{}, false
	}
	return Ack{Class: fr.Data[0], ID: fr.Data[1], OK: fr.ID == ubxAckAck}, true
}

// AppendAck appends an ACK-ACK (ok) or ACK-NAK for class/id.
func AppendAck(dst []byte, class, id byte, ok bool) []byte {
	msg := byte(ubxAckNak)
	if ok {
		msg = ubxAckAck
	}
	return AppendUBX(dst, ubxClassACK, msg, []byte{class, id})
}

// TimingMode is the receiver's time mode: a timing receiver that knows
// its antenna does not move solves for time alone, which needs fewer
// satellites and gives a steadier pulse.
type TimingMode string

// Timing modes.
const (
	TimingKeep     TimingMode = ""       // leave as configured
	TimingOff      TimingMode = "off"    // navigate (moving antenna)
	TimingSurveyIn TimingMode = "survey" // survey the antenna position in, then hold it
	TimingFixed    TimingMode = "fixed"  // the antenna position is given
)

// ConfigOptions is what `sitegm gnss configure` sets.
type ConfigOptions struct {
	Outputs     string // "ubx", "nmea" or "both"
	CurrentBaud int    // the port's rate now (legacy CFG-PRT restates it)
	Baud        int    // new rate; 0 keeps CurrentBaud
	// Time pulse: 1 Hz aligned to the UTC second, PulseLength long,
	// rising edge on the second unless FallingEdge, and (OnlyLocked) no
	// pulse at all while the receiver has no time solution.
	PulseLength time.Duration
	FallingEdge bool
	OnlyLocked  bool
	Timing      TimingMode
	SurveyMin   time.Duration // survey-in: at least this long
	SurveyAcc   float64       // survey-in: until the position is this good (m)
	Lat, Lon    float64       // fixed: degrees (WGS84)
	Height      float64       // fixed: metres above the ellipsoid
	FixedAcc    float64       // fixed: how good that position is (m)
	Save        bool          // also to battery-backed RAM and flash
}

// ConfigStep is one frame of a configuration and what it means.
type ConfigStep struct {
	Setting string // what the operator asked for: "outputs", "time pulse"...
	Meaning string // what this frame does, for --dry-run and refusals
	Frame   []byte
	// Class/ID the receiver acknowledges (the frame's own).
	Class, ID byte
	// Optional: a receiver without this message refuses it, which is
	// reported but is not a failure (SEC-SIG before F9 firmware 1.30).
	Optional bool
	// NewBaud: the port runs at this rate after the frame (0: unchanged).
	NewBaud int
	// NoAck: the receiver cannot confirm (it stops sending UBX).
	NoAck bool
}

// ubxOut is one message sitegm reads, with where each generation has it.
type ubxOut struct {
	name      string
	class, id byte
	key       uint32 // CFG-MSGOUT-..._UART1 (generation 9+), 0 none
	minGen    int    // first generation that has it
	maxGen    int    // last generation (0: all after minGen)
	optional  bool
	why       string
}

// The messages sitegm reads at 1 Hz (see ubxnav.go and ubxhealth.go).
var ubxOuts = []ubxOut{
	{"NAV-PVT", ubxClassNAV, ubxNavPVT, 0x20910007, 7, 0, false, "UTC date, time and fix with their validity flags"},
	{"NAV-SOL", ubxClassNAV, ubxNavSol, 0, 6, 6, false, "fix and GPS time (u-blox 6 has no NAV-PVT)"},
	{"NAV-TIMEUTC", ubxClassNAV, ubxNavTimeUTC, 0x2091005c, 6, 0, false, "UTC time, its accuracy and whether UTC is known"},
	{"NAV-TIMELS", ubxClassNAV, ubxNavTimeLS, 0x20910061, 8, 0, true, "leap second announcements"},
	{"NAV-STATUS", ubxClassNAV, ubxNavStatus, 0x2091001b, 6, 0, false, "fix and spoofing detection"},
	{"TIM-TP", ubxClassTIM, ubxTimTP, 0x2091017e, 6, 0, false, "quantisation error of the next pulse"},
	{"MON-HW", ubxClassMON, ubxMonHW, 0x209101b5, 6, 8, false, "antenna status and jamming indicator"},
	{"MON-RF", ubxClassMON, ubxMonRF, 0x2091035a, 9, 0, false, "antenna status and jamming per RF block"},
	{"SEC-SIG", ubxClassSEC, ubxSecSig, 0x20910635, 9, 0, true, "jamming and spoofing detection (newer firmware)"},
	{"TIM-SVIN", ubxClassTIM, ubxTimSVIN, 0x20910098, 6, 0, true, "survey-in progress (timing receivers)"},
	{"NAV-SVIN", ubxClassNAV, ubxNavSVIN, 0x20910089, 8, 0, true, "survey-in progress (high precision receivers)"},
}

// nmeaOut is an NMEA sentence: standard message class 0xF0.
type nmeaOut struct {
	name string
	id   byte
	key  uint32 // CFG-MSGOUT-NMEA_ID_..._UART1
	on   bool   // sitegm reads it; the others only fill a slow line
}

var nmeaOuts = []nmeaOut{
	{"RMC", 0x04, 0x209100ac, true}, {"GGA", 0x00, 0x209100bb, true}, {"ZDA", 0x08, 0x209100d9, true},
	{"GSA", 0x02, 0x209100c0, false}, {"GSV", 0x03, 0x209100c5, false},
	{"GLL", 0x01, 0x209100ca, false}, {"VTG", 0x05, 0x209100b1, false},
}

// Configuration keys of generation 9+ used here (ZED-F9T interface
// description, "Configuration interface").
const (
	keyUART1Baud      = 0x40520001
	keyUART1InUBX     = 0x10730001
	keyUART1InNMEA    = 0x10730002
	keyUART1OutUBX    = 0x10740001
	keyUART1OutNMEA   = 0x10740002
	keyRateMeas       = 0x30210001
	keyRateNav        = 0x30210002
	keyRateTimeRef    = 0x20210003
	keyTPPulseDef     = 0x20050023
	keyTPLengthDef    = 0x20050030
	keyTPPeriod       = 0x40050002
	keyTPPeriodLock   = 0x40050003
	keyTPLen          = 0x40050004
	keyTPLenLock      = 0x40050005
	keyTPEnable       = 0x10050007
	keyTPSyncGNSS     = 0x10050008
	keyTPUseLocked    = 0x10050009
	keyTPAlignTOW     = 0x1005000a
	keyTPPolarity     = 0x1005000b
	keyTPTimeGrid     = 0x2005000c
	keyTModeMode      = 0x20030001
	keyTModePosType   = 0x20030002
	keyTModeLat       = 0x40030009
	keyTModeLon       = 0x4003000a
	keyTModeHeight    = 0x4003000b
	keyTModeLatHP     = 0x2003000c
	keyTModeLonHP     = 0x2003000d
	keyTModeHeightHP  = 0x2003000e
	keyTModeFixedAcc  = 0x4003000f
	keyTModeSvinMin   = 0x40030010
	keyTModeSvinAccLm = 0x40030011
)

// KeyValue is one item of a CFG-VALSET.
type KeyValue struct {
	Key   uint32
	Value uint64
}

// keySize is the storage size in bytes of a key's value: bits 28-30 of
// the key ID (1: one bit stored in a byte, 2: one byte, 3: two, 4: four,
// 5: eight).
func keySize(key uint32) int {
	return [...]int{0, 1, 1, 2, 4, 8, 0, 0}[key>>28&7]
}

// Layers of a CFG-VALSET.
const (
	LayerRAM   = 0x01
	LayerBBR   = 0x02
	LayerFlash = 0x04
)

// AppendValset appends a CFG-VALSET (version 0) of kv to layers.
func AppendValset(dst []byte, layers byte, kv ...KeyValue) []byte {
	p := []byte{0, layers, 0, 0}
	for _, x := range kv {
		p = binary.LittleEndian.AppendUint32(p, x.Key)
		for i := 0; i < keySize(x.Key); i++ {
			p = append(p, byte(x.Value>>(8*i)))
		}
	}
	return AppendUBX(dst, ubxClassCFG, ubxCfgVALSET, p)
}

// DecodeValset reads a CFG-VALSET payload; ok is false when a key has no
// size (malformed) or the payload ends inside a value.
func DecodeValset(p []byte) (layers byte, kv []KeyValue, ok bool) {
	if len(p) < 4 || p[0] > 1 {
		return 0, nil, false
	}
	layers = p[1]
	for i := 4; i < len(p); {
		if i+4 > len(p) {
			return 0, nil, false
		}
		k := binary.LittleEndian.Uint32(p[i:])
		n := keySize(k)
		if n == 0 || i+4+n > len(p) {
			return 0, nil, false
		}
		var v uint64
		for j := 0; j < n; j++ {
			v |= uint64(p[i+4+j]) << (8 * j)
		}
		kv = append(kv, KeyValue{k, v})
		i += 4 + n
	}
	return layers, kv, true
}

// Legacy payloads (generations 6 to 8).

// AppendCfgMsg appends a CFG-MSG setting class/id to rate on the port it
// arrives on (the 3-byte form).
func AppendCfgMsg(dst []byte, class, id, rate byte) []byte {
	return AppendUBX(dst, ubxClassCFG, ubxCfgMSG, []byte{class, id, rate})
}

// Protocol masks of CFG-PRT.
const (
	ProtoUBX  = 0x01
	ProtoNMEA = 0x02
)

// AppendCfgPrt appends a CFG-PRT for UART1: 8N1 at baud, input UBX+NMEA,
// output out (ProtoUBX|ProtoNMEA).
func AppendCfgPrt(dst []byte, baud int, out uint16) []byte {
	p := make([]byte, 20)
	le := binary.LittleEndian
	p[0] = 1                        // portID: UART1
	le.PutUint32(p[4:], 0x000008C0) // mode: 8 data bits, no parity, 1 stop bit
	le.PutUint32(p[8:], uint32(baud))
	le.PutUint16(p[12:], ProtoUBX|ProtoNMEA)
	le.PutUint16(p[14:], out)
	return AppendUBX(dst, ubxClassCFG, ubxCfgPRT, p)
}

// DecodeCfgPrt reads a UART CFG-PRT: its baud and output protocols.
func DecodeCfgPrt(p []byte) (baud int, out uint16, ok bool) {
	if len(p) < 20 || p[0] != 1 {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint32(p[8:])), binary.LittleEndian.Uint16(p[14:]), true
}

// WakeUBX returns the frames that switch UBX output on for UART1 in RAM
// whatever the generation, at baud: a receiver set to NMEA only answers
// no poll until then. Generation 9+ takes the CFG-VALSET (and also still
// reads the legacy CFG-PRT); older ones take the CFG-PRT and refuse or
// ignore the CFG-VALSET. Nothing is saved.
func WakeUBX(baud int) []byte {
	b := AppendCfgPrt(nil, baud, ProtoUBX|ProtoNMEA)
	return AppendValset(b, LayerRAM, KeyValue{keyUART1OutUBX, 1}, KeyValue{keyUART1OutNMEA, 1})
}

// Errors of PlanConfig.
var (
	ErrOldReceiver = errors.New("u-blox generation 5 and older (and unknown hardware) are not configured here: they lack CFG-TP5 and the timing modes; set them up with the receiver's own tools")
)

// PlanConfig returns the frames that set receiver v up as o says, in the
// order they are to be sent: message outputs first (so the receiver
// still speaks UBX to acknowledge them), then time pulse, timing mode and
// navigation rate, then the port (protocols, baud) and, on generations
// before 9, the save (CFG-CFG), which has to follow the port so that the
// port settings are saved too. Generation 9+ saves with each CFG-VALSET
// (layers RAM, battery-backed RAM and flash).
func PlanConfig(v ReceiverVersion, o ConfigOptions) ([]ConfigStep, error) {
	if v.Gen < 6 {
		return nil, ErrOldReceiver
	}
	ubx, nmea := o.Outputs != "nmea", o.Outputs != "ubx"
	switch o.Outputs {
	case "ubx", "nmea", "both":
	default:
		return nil, fmt.Errorf("outputs %q: want ubx, nmea or both", o.Outputs)
	}
	if o.PulseLength <= 0 || o.PulseLength >= time.Second {
		return nil, fmt.Errorf("pulse length %v: want more than 0 and less than 1 s", o.PulseLength)
	}
	if o.Timing == TimingFixed && (math.Abs(o.Lat) > 90 || math.Abs(o.Lon) > 180 || o.FixedAcc <= 0) {
		return nil, fmt.Errorf("fixed position %.7f %.7f: latitude within ±90, longitude within ±180 and an accuracy above 0 m", o.Lat, o.Lon)
	}
	if o.Timing == TimingSurveyIn && (o.SurveyMin <= 0 || o.SurveyAcc <= 0) {
		return nil, errors.New("survey-in needs a minimum duration and an accuracy limit above 0")
	}
	if v.Gen >= 9 {
		return planValset(v, o, ubx, nmea), nil
	}
	return planLegacy(v, o, ubx, nmea), nil
}

func step(setting, meaning string, frame []byte) ConfigStep {
	return ConfigStep{Setting: setting, Meaning: meaning, Frame: frame, Class: frame[2], ID: frame[3]}
}

func onOff(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func planValset(v ReceiverVersion, o ConfigOptions, ubx, nmea bool) []ConfigStep {
	layers := byte(LayerRAM)
	if o.Save {
		layers |= LayerBBR | LayerFlash
	}
	var steps []ConfigStep
	// One message per frame: a firmware without one refuses only that.
	for _, m := range ubxOuts {
		if m.key == 0 || v.Gen < m.minGen || (m.maxGen != 0 && v.Gen > m.maxGen) {
			continue
		}
		s := step("messages", fmt.Sprintf("UBX-%s %s (UART1): %s", m.name, onOffWord(ubx), m.why),
			AppendValset(nil, layers, KeyValue{m.key, onOff(ubx)}))
		s.Optional = m.optional
		steps = append(steps, s)
	}
	for _, m := range nmeaOuts {
		on := nmea && m.on
		steps = append(steps, step("messages", fmt.Sprintf("NMEA %s %s (UART1)", m.name, onOffWord(on)),
			AppendValset(nil, layers, KeyValue{m.key, onOff(on)})))
	}
	lenUS := uint64(o.PulseLength / time.Microsecond)
	unlocked := lenUS
	if o.OnlyLocked {
		unlocked = 0
	}
	steps = append(steps, step("time pulse", pulseMeaning(o),
		AppendValset(nil, layers,
			KeyValue{keyTPPulseDef, 0}, KeyValue{keyTPLengthDef, 1},
			KeyValue{keyTPPeriod, 1e6}, KeyValue{keyTPPeriodLock, 1e6},
			KeyValue{keyTPLen, unlocked}, KeyValue{keyTPLenLock, lenUS},
			KeyValue{keyTPEnable, 1}, KeyValue{keyTPSyncGNSS, 1}, KeyValue{keyTPUseLocked, 1},
			KeyValue{keyTPAlignTOW, 1}, KeyValue{keyTPPolarity, onOff(!o.FallingEdge)}, KeyValue{keyTPTimeGrid, 0})))
	switch o.Timing {
	case TimingOff:
		steps = append(steps, step("timing mode", "time mode off: the receiver navigates",
			AppendValset(nil, layers, KeyValue{keyTModeMode, 0})))
	case TimingSurveyIn:
		steps = append(steps, step("timing mode", surveyMeaning(o),
			AppendValset(nil, layers, KeyValue{keyTModeMode, 1},
				KeyValue{keyTModeSvinMin, uint64(o.SurveyMin / time.Second)},
				KeyValue{keyTModeSvinAccLm, uint64(math.Round(o.SurveyAcc * 1e4))})))
	case TimingFixed:
		lat, latHP := degHP(o.Lat)
		lon, lonHP := degHP(o.Lon)
		cm := math.Floor(o.Height * 100)
		hp := math.Round((o.Height*100 - cm) * 100) // 0.1 mm
		steps = append(steps, step("timing mode", fixedMeaning(o),
			AppendValset(nil, layers, KeyValue{keyTModeMode, 2}, KeyValue{keyTModePosType, 1},
				KeyValue{keyTModeLat, uint64(uint32(lat))}, KeyValue{keyTModeLon, uint64(uint32(lon))},
				KeyValue{keyTModeHeight, uint64(uint32(int32(cm)))},
				KeyValue{keyTModeLatHP, uint64(uint8(latHP))}, KeyValue{keyTModeLonHP, uint64(uint8(lonHP))},
				KeyValue{keyTModeHeightHP, uint64(uint8(int8(hp)))},
				KeyValue{keyTModeFixedAcc, uint64(math.Round(o.FixedAcc * 1e4))})))
	}
	steps = append(steps, step("rate", "one navigation solution a second, aligned to UTC",
		AppendValset(nil, layers, KeyValue{keyRateMeas, 1000}, KeyValue{keyRateNav, 1}, KeyValue{keyRateTimeRef, 0})))
	out := step("outputs", fmt.Sprintf("UART1 input UBX+NMEA, output %s", outputsWord(ubx, nmea)),
		AppendValset(nil, layers, KeyValue{keyUART1InUBX, 1}, KeyValue{keyUART1InNMEA, 1},
			KeyValue{keyUART1OutUBX, onOff(ubx)}, KeyValue{keyUART1OutNMEA, onOff(nmea)}))
	out.NoAck = !ubx
	steps = append(steps, out)
	if o.Baud != 0 && o.Baud != o.CurrentBaud {
		s := step("baud", fmt.Sprintf("UART1 at %d baud", o.Baud), AppendValset(nil, layers, KeyValue{keyUART1Baud, uint64(o.Baud)}))
		s.NewBaud, s.NoAck = o.Baud, !ubx
		steps = append(steps, s)
	}
	return steps
}

// degHP splits degrees into 1e-7 and 1e-9 degree parts (CFG-TMODE-LAT
// and _HP: value = LAT*1e-7 + LAT_HP*1e-9, HP within ±99).
func degHP(d float64) (int32, int8) {
	n := math.Round(d * 1e9)
	whole := math.Trunc(n / 100)
	return int32(whole), int8(n - whole*100)
}

func planLegacy(v ReceiverVersion, o ConfigOptions, ubx, nmea bool) []ConfigStep {
	var steps []ConfigStep
	if ubx {
		for _, m := range ubxOuts {
			if v.Gen < m.minGen || (m.maxGen != 0 && v.Gen > m.maxGen) {
				continue
			}
			s := step("messages", fmt.Sprintf("UBX-%s on: %s", m.name, m.why), AppendCfgMsg(nil, m.class, m.id, 1))
			s.Optional = m.optional
			steps = append(steps, s)
		}
	}
	if nmea {
		for _, m := range nmeaOuts {
			steps = append(steps, step("messages", fmt.Sprintf("NMEA %s %s", m.name, onOffWord(m.on)),
				AppendCfgMsg(nil, 0xF0, m.id, byte(onOff(m.on)))))
		}
	}
	steps = append(steps, step("time pulse", pulseMeaning(o), appendTP5(nil, v, o)))
	if o.Timing != TimingKeep {
		steps = append(steps, step("timing mode", timingMeaning(o), appendLegacyTMode(nil, v, o)))
	}
	rate := make([]byte, 6)
	binary.LittleEndian.PutUint16(rate, 1000)
	binary.LittleEndian.PutUint16(rate[2:], 1)
	steps = append(steps, step("rate", "one navigation solution a second, aligned to UTC", AppendUBX(nil, ubxClassCFG, ubxCfgRATE, rate)))
	baud := o.CurrentBaud
	if o.Baud != 0 {
		baud = o.Baud
	}
	out := uint16(0)
	if ubx {
		out |= ProtoUBX
	}
	if nmea {
		out |= ProtoNMEA
	}
	prt := step("outputs", fmt.Sprintf("UART1 at %d baud 8N1, input UBX+NMEA, output %s", baud, outputsWord(ubx, nmea)), AppendCfgPrt(nil, baud, out))
	if baud != o.CurrentBaud {
		prt.NewBaud = baud
	}
	prt.NoAck = !ubx
	steps = append(steps, prt)
	if o.Save {
		// clearMask 0, saveMask: every section (ports, messages, INF,
		// navigation, receiver manager, antenna, logging, FTS), loadMask
		// 0; devices: battery-backed RAM, flash, EEPROM, SPI flash.
		p := make([]byte, 13)
		binary.LittleEndian.PutUint32(p[4:], 0x00001F1F)
		p[12] = 0x17
		s := step("save", "save the configuration to battery-backed RAM and flash", AppendUBX(nil, ubxClassCFG, ubxCfgCFG, p))
		s.NoAck = !ubx
		steps = append(steps, s)
	}
	return steps
}

// appendTP5 appends CFG-TP5 for TIMEPULSE: period 1 s locked and not,
// length given (0 while unlocked when only locked), aligned to the top
// of the UTC second, polarity.
func appendTP5(dst []byte, v ReceiverVersion, o ConfigOptions) []byte {
	p := make([]byte, 32)
	le := binary.LittleEndian
	p[1] = 1 // version 1 (u-blox 8; u-blox 6 reads the same layout as version 0)
	if v.Gen < 8 {
		p[1] = 0
	}
	lenUS := uint32(o.PulseLength / time.Microsecond)
	unlocked := lenUS
	if o.OnlyLocked {
		unlocked = 0
	}
	le.PutUint32(p[8:], 1e6)  // freqPeriod µs
	le.PutUint32(p[12:], 1e6) // freqPeriodLock µs
	le.PutUint32(p[16:], unlocked)
	le.PutUint32(p[20:], lenUS)
	// flags: active, lockGnssFreq, lockedOtherSet, isLength, alignToTow,
	// polarity (rising), gridUtcGnss 0 (UTC).
	flags := uint32(0x01 | 0x02 | 0x04 | 0x10 | 0x20)
	if !o.FallingEdge {
		flags |= 0x40
	}
	le.PutUint32(p[28:], flags)
	return AppendUBX(dst, ubxClassCFG, ubxCfgTP5, p)
}

// ubxCfgTMODE is u-blox 6's CFG-TMODE (28 bytes, ECEF only).
const ubxCfgTMODE = 0x1D

// appendLegacyTMode appends CFG-TMODE (u-blox 6) or CFG-TMODE2 (M8T).
func appendLegacyTMode(dst []byte, v ReceiverVersion, o ConfigOptions) []byte {
	le := binary.LittleEndian
	p := make([]byte, 28)
	mode := map[TimingMode]uint32{TimingOff: 0, TimingSurveyIn: 1, TimingFixed: 2}[o.Timing]
	if v.Gen < 7 {
		le.PutUint32(p, mode)
		if o.Timing == TimingFixed {
			x, y, z := ecef(o.Lat, o.Lon, o.Height)
			le.PutUint32(p[4:], uint32(int32(math.Round(x*100))))
			le.PutUint32(p[8:], uint32(int32(math.Round(y*100))))
			le.PutUint32(p[12:], uint32(int32(math.Round(z*100))))
			le.PutUint32(p[16:], uint32(math.Round(o.FixedAcc*o.FixedAcc*1e6)))
		}
		le.PutUint32(p[20:], uint32(o.SurveyMin/time.Second))
		le.PutUint32(p[24:], uint32(math.Round(o.SurveyAcc*o.SurveyAcc*1e6)))
		return AppendUBX(dst, ubxClassCFG, ubxCfgTMODE, p)
	}
	p[0] = byte(mode)
	if o.Timing == TimingFixed {
		le.PutUint16(p[2:], 1) // lla: latitude, longitude, altitude
		le.PutUint32(p[4:], uint32(int32(math.Round(o.Lat*1e7))))
		le.PutUint32(p[8:], uint32(int32(math.Round(o.Lon*1e7))))
		le.PutUint32(p[12:], uint32(int32(math.Round(o.Height*100))))
		le.PutUint32(p[16:], uint32(math.Round(o.FixedAcc*1000)))
	}
	le.PutUint32(p[20:], uint32(o.SurveyMin/time.Second))
	le.PutUint32(p[24:], uint32(math.Round(o.SurveyAcc*1000)))
	return AppendUBX(dst, ubxClassCFG, ubxCfgTMODE2, p)
}

// ecef converts WGS84 latitude, longitude (degrees) and height above the
// ellipsoid (m) to Earth-centred, Earth-fixed metres.
func ecef(lat, lon, h float64) (x, y, z float64) {
	const a, f = 6378137.0, 1 / 298.257223563
	e2 := f * (2 - f)
	φ, λ := lat*math.Pi/180, lon*math.Pi/180
	n := a / math.Sqrt(1-e2*math.Sin(φ)*math.Sin(φ))
	return (n + h) * math.Cos(φ) * math.Cos(λ), (n + h) * math.Cos(φ) * math.Sin(λ), (n*(1-e2) + h) * math.Sin(φ)
}

func onOffWord(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func outputsWord(ubx, nmea bool) string {
	switch {
	case ubx && nmea:
		return "UBX+NMEA"
	case ubx:
		return "UBX only"
	}
	return "NMEA only"
}

func pulseMeaning(o ConfigOptions) string {
	edge := "rising"
	if o.FallingEdge {
		edge = "falling"
	}
	s := fmt.Sprintf("time pulse 1 Hz on the UTC second, %v long, %s edge on the second", o.PulseLength, edge)
	if o.OnlyLocked {
		s += ", none without a time solution"
	}
	return s
}

func surveyMeaning(o ConfigOptions) string {
	return fmt.Sprintf("time mode survey-in: at least %v and until the position is within %g m, then hold it", o.SurveyMin, o.SurveyAcc)
}

func fixedMeaning(o ConfigOptions) string {
	return fmt.Sprintf("time mode fixed position %.9f° %.9f° %.3f m (±%g m)", o.Lat, o.Lon, o.Height, o.FixedAcc)
}

func timingMeaning(o ConfigOptions) string {
	switch o.Timing {
	case TimingSurveyIn:
		return surveyMeaning(o)
	case TimingFixed:
		return fixedMeaning(o)
	}
	return "time mode off: the receiver navigates"
}

// Names of the configuration keys used here, for whoever reads a
// CFG-VALSET (gnss-sim): "UART1-BAUDRATE", "UART1OUTPROT-UBX",
// "MSGOUT-UBX-NAV-PVT", "MSGOUT-NMEA-RMC", "TP-...", "TMODE-...",
// "RATE-...".
var configKeyNames = func() map[uint32]string {
	m := map[uint32]string{
		keyUART1Baud: "UART1-BAUDRATE", keyUART1InUBX: "UART1INPROT-UBX", keyUART1InNMEA: "UART1INPROT-NMEA",
		keyUART1OutUBX: "UART1OUTPROT-UBX", keyUART1OutNMEA: "UART1OUTPROT-NMEA",
		keyRateMeas: "RATE-MEAS", keyRateNav: "RATE-NAV", keyRateTimeRef: "RATE-TIMEREF",
		keyTPPulseDef: "TP-PULSE_DEF", keyTPLengthDef: "TP-PULSE_LENGTH_DEF", keyTPPeriod: "TP-PERIOD_TP1",
		keyTPPeriodLock: "TP-PERIOD_LOCK_TP1", keyTPLen: "TP-LEN_TP1", keyTPLenLock: "TP-LEN_LOCK_TP1",
		keyTPEnable: "TP-TP1_ENA", keyTPSyncGNSS: "TP-SYNC_GNSS_TP1", keyTPUseLocked: "TP-USE_LOCKED_TP1",
		keyTPAlignTOW: "TP-ALIGN_TO_TOW_TP1", keyTPPolarity: "TP-POL_TP1", keyTPTimeGrid: "TP-TIMEGRID_TP1",
		keyTModeMode: "TMODE-MODE", keyTModePosType: "TMODE-POS_TYPE", keyTModeLat: "TMODE-LAT", keyTModeLon: "TMODE-LON",
		keyTModeHeight: "TMODE-HEIGHT", keyTModeLatHP: "TMODE-LAT_HP", keyTModeLonHP: "TMODE-LON_HP",
		keyTModeHeightHP: "TMODE-HEIGHT_HP", keyTModeFixedAcc: "TMODE-FIXED_POS_ACC",
		keyTModeSvinMin: "TMODE-SVIN_MIN_DUR", keyTModeSvinAccLm: "TMODE-SVIN_ACC_LIMIT",
	}
	for _, o := range ubxOuts {
		if o.key != 0 {
			m[o.key] = "MSGOUT-UBX-" + o.name
		}
	}
	for _, o := range nmeaOuts {
		m[o.key] = "MSGOUT-NMEA-" + o.name
	}
	return m
}()

// ConfigKeyName names a configuration key sitegm sets; ok is false for
// any other key.
func ConfigKeyName(key uint32) (name string, ok bool) {
	name, ok = configKeyNames[key]
	return name, ok
}

// UBXName names a UBX class/id for messages to the operator: "UBX-NAV-PVT",
// "UBX-CFG-TP5", "NMEA-RMC" (standard message class 0xF0).
func UBXName(class, id byte) string {
	for _, m := range ubxOuts {
		if m.class == class && m.id == id {
			return "UBX-" + m.name
		}
	}
	if class == 0xF0 {
		for _, m := range nmeaOuts {
			if m.id == id {
				return "NMEA-" + m.name
			}
		}
	}
	switch {
	case class == ubxClassNAV && id == ubxNavEOE:
		return "UBX-NAV-EOE"
	case class == ubxClassNAV && id == ubxNavTimeGPS:
		return "UBX-NAV-TIMEGPS"
	}
	if class == ubxClassCFG {
		if n, ok := map[byte]string{ubxCfgPRT: "CFG-PRT", ubxCfgMSG: "CFG-MSG", ubxCfgTP5: "CFG-TP5", ubxCfgTMODE: "CFG-TMODE",
			ubxCfgTMODE2: "CFG-TMODE2", ubxCfgTMODE3: "CFG-TMODE3", ubxCfgCFG: "CFG-CFG", ubxCfgRATE: "CFG-RATE", ubxCfgVALSET: "CFG-VALSET"}[id]; ok {
			return "UBX-" + n
		}
	}
	return fmt.Sprintf("UBX-%02X-%02X", class, id)
}
