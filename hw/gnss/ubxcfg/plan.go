package ubxcfg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"sitegm/hw/gnss/ubx"
)

// Planning a receiver's configuration: which frames, in which order, for
// which generation, and what each one means to the operator.

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
	// CableDelay is the antenna cable's delay the receiver compensates
	// itself (it fires the pulse that much earlier); 0 leaves it to
	// sitegm's gnss.cable_delay. It is always written, so that the
	// receiver's own default (u-blox: 50 ns) is never added unnoticed to
	// sitegm's compensation. Up to 32767 ns (an I2).
	CableDelay time.Duration
	Timing     TimingMode
	SurveyMin  time.Duration // survey-in: at least this long
	SurveyAcc  float64       // survey-in: until the position is this good (m)
	Lat, Lon   float64       // fixed: degrees (WGS84)
	Height     float64       // fixed: metres above the ellipsoid
	FixedAcc   float64       // fixed: how good that position is (m)
	Save       bool          // also to battery-backed RAM and flash
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
	// Keys: what a CFG-VALSET sets (generation 9+), read back with
	// CFG-VALGET to confirm what the receiver holds; nil for the legacy
	// messages.
	Keys []KeyValue
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
	{"NAV-PVT", ubx.ClassNAV, ubx.NavPVT, 0x20910007, 7, 0, false, "UTC date, time and fix with their validity flags"},
	{"NAV-SOL", ubx.ClassNAV, ubx.NavSol, 0, 6, 6, false, "fix and GPS time (u-blox 6 has no NAV-PVT)"},
	{"NAV-TIMEUTC", ubx.ClassNAV, ubx.NavTimeUTC, 0x2091005c, 6, 0, false, "UTC time, its accuracy and whether UTC is known"},
	{"NAV-TIMELS", ubx.ClassNAV, ubx.NavTimeLS, 0x20910061, 8, 0, true, "leap second announcements"},
	{"NAV-STATUS", ubx.ClassNAV, ubx.NavStatus, 0x2091001b, 6, 0, false, "fix and spoofing detection"},
	{"TIM-TP", ubx.ClassTIM, ubx.TimTP, 0x2091017e, 6, 0, false, "quantisation error of the next pulse"},
	{"MON-HW", ubx.ClassMON, ubx.MonHW, 0x209101b5, 6, 8, false, "antenna status and jamming indicator"},
	{"MON-RF", ubx.ClassMON, ubx.MonRF, 0x2091035a, 9, 0, false, "antenna status and jamming per RF block"},
	{"SEC-SIG", ubx.ClassSEC, ubx.SecSig, 0x20910635, 9, 0, true, "jamming and spoofing detection (newer firmware)"},
	{"TIM-SVIN", ubx.ClassTIM, ubx.TimSVIN, 0x20910098, 6, 0, true, "survey-in progress (timing receivers)"},
	{"NAV-SVIN", ubx.ClassNAV, ubx.NavSVIN, 0x20910089, 8, 0, true, "survey-in progress (high precision receivers)"},
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
	withUBX, nmea := o.Outputs != "nmea", o.Outputs != "ubx"
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
	if o.CableDelay < 0 || o.CableDelay > 32767*time.Nanosecond {
		return nil, fmt.Errorf("cable delay %v: want 0 to 32767ns (the receiver's field is 16 bits of ns)", o.CableDelay)
	}
	if v.Gen >= 9 {
		return planValset(v, o, withUBX, nmea), nil
	}
	return planLegacy(v, o, withUBX, nmea), nil
}

func step(setting, meaning string, frame []byte) ConfigStep {
	return ConfigStep{Setting: setting, Meaning: meaning, Frame: frame, Class: frame[2], ID: frame[3]}
}

// valset is a generation 9+ step: one CFG-VALSET of kv to layers, the
// keys kept to read back what the receiver holds after it.
func valset(setting, meaning string, layers byte, kv ...KeyValue) ConfigStep {
	s := step(setting, meaning, AppendValset(nil, layers, kv...))
	s.Keys = kv
	return s
}

func onOff(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func planValset(v ReceiverVersion, o ConfigOptions, withUBX, nmea bool) []ConfigStep {
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
		s := valset("messages", fmt.Sprintf("UBX-%s %s (UART1): %s", m.name, onOffWord(withUBX), m.why),
			layers, KeyValue{m.key, onOff(withUBX)})
		s.Optional = m.optional
		steps = append(steps, s)
	}
	for _, m := range nmeaOuts {
		on := nmea && m.on
		steps = append(steps, valset("messages", fmt.Sprintf("NMEA %s %s (UART1)", m.name, onOffWord(on)),
			layers, KeyValue{m.key, onOff(on)}))
	}
	lenUS := uint64(o.PulseLength / time.Microsecond)
	unlocked := lenUS
	if o.OnlyLocked {
		unlocked = 0
	}
	steps = append(steps, valset("time pulse", pulseMeaning(o), layers,
		KeyValue{keyTPPulseDef, 0}, KeyValue{keyTPLengthDef, 1},
		KeyValue{keyTPPeriod, 1e6}, KeyValue{keyTPPeriodLock, 1e6},
		KeyValue{keyTPLen, unlocked}, KeyValue{keyTPLenLock, lenUS},
		KeyValue{keyTPEnable, 1}, KeyValue{keyTPSyncGNSS, 1}, KeyValue{keyTPUseLocked, 1},
		KeyValue{keyTPAlignTOW, 1}, KeyValue{keyTPPolarity, onOff(!o.FallingEdge)}, KeyValue{keyTPTimeGrid, 0},
		KeyValue{keyTPAntCableDelay, uint64(uint16(int16(o.CableDelay.Nanoseconds())))}))
	switch o.Timing {
	case TimingOff:
		steps = append(steps, valset("timing mode", "time mode off: the receiver navigates",
			layers, KeyValue{keyTModeMode, 0}))
	case TimingSurveyIn:
		steps = append(steps, valset("timing mode", surveyMeaning(o),
			layers, KeyValue{keyTModeMode, 1},
			KeyValue{keyTModeSvinMin, uint64(o.SurveyMin / time.Second)},
			KeyValue{keyTModeSvinAccLm, uint64(math.Round(o.SurveyAcc * 1e4))}))
	case TimingFixed:
		lat, latHP := degHP(o.Lat)
		lon, lonHP := degHP(o.Lon)
		cm := math.Floor(o.Height * 100)
		hp := math.Round((o.Height*100 - cm) * 100) // 0.1 mm
		steps = append(steps, valset("timing mode", fixedMeaning(o),
			layers, KeyValue{keyTModeMode, 2}, KeyValue{keyTModePosType, 1},
			KeyValue{keyTModeLat, uint64(uint32(lat))}, KeyValue{keyTModeLon, uint64(uint32(lon))},
			KeyValue{keyTModeHeight, uint64(uint32(int32(cm)))},
			KeyValue{keyTModeLatHP, uint64(uint8(latHP))}, KeyValue{keyTModeLonHP, uint64(uint8(lonHP))},
			KeyValue{keyTModeHeightHP, uint64(uint8(int8(hp)))},
			KeyValue{keyTModeFixedAcc, uint64(math.Round(o.FixedAcc * 1e4))}))
	}
	steps = append(steps, valset("rate", "one navigation solution a second, aligned to UTC",
		layers, KeyValue{keyRateMeas, 1000}, KeyValue{keyRateNav, 1}, KeyValue{keyRateTimeRef, 0}))
	out := valset("outputs", fmt.Sprintf("UART1 input UBX+NMEA, output %s", outputsWord(withUBX, nmea)),
		layers, KeyValue{keyUART1InUBX, 1}, KeyValue{keyUART1InNMEA, 1},
		KeyValue{keyUART1OutUBX, onOff(withUBX)}, KeyValue{keyUART1OutNMEA, onOff(nmea)})
	out.NoAck = !withUBX
	steps = append(steps, out)
	if o.Baud != 0 && o.Baud != o.CurrentBaud {
		s := valset("baud", fmt.Sprintf("UART1 at %d baud", o.Baud), layers, KeyValue{keyUART1Baud, uint64(o.Baud)})
		s.NewBaud, s.NoAck = o.Baud, !withUBX
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

func planLegacy(v ReceiverVersion, o ConfigOptions, withUBX, nmea bool) []ConfigStep {
	var steps []ConfigStep
	if withUBX {
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
	steps = append(steps, step("rate", "one navigation solution a second, aligned to UTC", ubx.Append(nil, ubx.ClassCFG, ubx.CfgRATE, rate)))
	baud := o.CurrentBaud
	if o.Baud != 0 {
		baud = o.Baud
	}
	out := uint16(0)
	if withUBX {
		out |= ProtoUBX
	}
	if nmea {
		out |= ProtoNMEA
	}
	prt := step("outputs", fmt.Sprintf("UART1 at %d baud 8N1, input UBX+NMEA, output %s", baud, outputsWord(withUBX, nmea)), AppendCfgPrt(nil, baud, out))
	if baud != o.CurrentBaud {
		prt.NewBaud = baud
	}
	prt.NoAck = !withUBX
	steps = append(steps, prt)
	if o.Save {
		// clearMask 0, saveMask: every section (ports, messages, INF,
		// navigation, receiver manager, antenna, logging, FTS), loadMask
		// 0; devices: battery-backed RAM, flash, EEPROM, SPI flash.
		p := make([]byte, 13)
		binary.LittleEndian.PutUint32(p[4:], 0x00001F1F)
		p[12] = 0x17
		s := step("save", "save the configuration to battery-backed RAM and flash", ubx.Append(nil, ubx.ClassCFG, ubx.CfgCFG, p))
		s.NoAck = !withUBX
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
	le.PutUint16(p[4:], uint16(int16(o.CableDelay.Nanoseconds()))) // antCableDelay, I2 ns
	le.PutUint32(p[8:], 1e6)                                       // freqPeriod µs
	le.PutUint32(p[12:], 1e6)                                      // freqPeriodLock µs
	le.PutUint32(p[16:], unlocked)
	le.PutUint32(p[20:], lenUS)
	// flags: active, lockGnssFreq, lockedOtherSet, isLength, alignToTow,
	// polarity (rising), gridUtcGnss 0 (UTC).
	flags := uint32(0x01 | 0x02 | 0x04 | 0x10 | 0x20)
	if !o.FallingEdge {
		flags |= 0x40
	}
	le.PutUint32(p[28:], flags)
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgTP5, p)
}

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
		return ubx.Append(dst, ubx.ClassCFG, ubx.CfgTMODE, p)
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
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgTMODE2, p)
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

func outputsWord(withUBX, nmea bool) string {
	switch {
	case withUBX && nmea:
		return "UBX+NMEA"
	case withUBX:
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
	if o.CableDelay != 0 {
		return s + fmt.Sprintf("; the receiver compensates an antenna cable delay of %v (gnss.cable_delay must stay 0)", o.CableDelay)
	}
	return s + "; no antenna cable delay compensated by the receiver (sitegm's gnss.cable_delay does it)"
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
	case class == ubx.ClassNAV && id == ubx.NavEOE:
		return "UBX-NAV-EOE"
	case class == ubx.ClassNAV && id == ubx.NavTimeGPS:
		return "UBX-NAV-TIMEGPS"
	}
	if class == ubx.ClassCFG {
		if n, ok := map[byte]string{ubx.CfgPRT: "CFG-PRT", ubx.CfgMSG: "CFG-MSG", ubx.CfgTP5: "CFG-TP5", ubx.CfgTMODE: "CFG-TMODE",
			ubx.CfgTMODE2: "CFG-TMODE2", ubx.CfgTMODE3: "CFG-TMODE3", ubx.CfgCFG: "CFG-CFG", ubx.CfgRATE: "CFG-RATE", ubx.CfgVALSET: "CFG-VALSET", ubx.CfgVALGET: "CFG-VALGET"}[id]; ok {
			return "UBX-" + n
		}
	}
	return fmt.Sprintf("UBX-%02X-%02X", class, id)
}
