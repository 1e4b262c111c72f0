// Package ubxcfg configures a u-blox receiver for timing, without I/O:
// which frames to send for which generation (plan.go), and what the
// frames and answers are (this file). `sitegm gnss configure` sends them
// over the serial port; gnss-sim answers them. The decoder of every
// second's messages is hw/gnss; this is what only the configure command
// and the emulator need.
//
// Sources: the u-blox 6 and u-blox 8/M8 receiver descriptions (legacy
// UBX-CFG-PRT, -MSG, -TP5, -TMODE, -TMODE2, -RATE, -CFG) and the ZED-F9T
// / M10 interface descriptions (UBX-CFG-VALSET and its configuration
// keys; the legacy messages are deprecated there).
package ubxcfg

import (
	"encoding/binary"
	"strconv"
	"strings"

	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
)

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
func UBXPoll(class, id byte) []byte { return ubx.Append(nil, class, id, nil) }

// MonVerPoll is the frame that asks for UBX-MON-VER.
func MonVerPoll() []byte { return UBXPoll(ubx.ClassMON, ubx.MonVER) }

// IsMonVer says whether fr is a MON-VER answer.
func IsMonVer(fr *gnss.Frame) bool {
	return fr.Kind == gnss.FrameUBX && fr.Class == ubx.ClassMON && fr.ID == ubx.MonVER && len(fr.Data) >= 40
}

// hwGenerations maps MON-VER hwVersion to the generation (the receiver
// descriptions list these values).
var hwGenerations = map[string]int{
	"00040005": 5, "00040007": 6, "00070000": 7, "00080000": 8,
	"00190000": 9, "000A0000": 10, "000B0000": 20,
}

// DecodeMonVer reads a MON-VER payload (gnss.ParseMonVer) and names
// the receiver's generation.
func DecodeMonVer(p []byte) (ReceiverVersion, bool) {
	g, ok := gnss.ParseMonVer(p)
	if !ok {
		return ReceiverVersion{}, false
	}
	v := ReceiverVersion{SW: g.Software, HW: g.Hardware, Ext: g.Extensions, Module: g.Module, ProtVer: g.Protocol}
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

// AppendMonVer appends a MON-VER answer (gnss-sim, tests).
func AppendMonVer(dst []byte, sw, hw string, ext ...string) []byte {
	p := make([]byte, 40+30*len(ext))
	copy(p[:29], sw)
	copy(p[30:39], hw)
	for i, e := range ext {
		copy(p[40+30*i:40+30*i+29], e)
	}
	return ubx.Append(dst, ubx.ClassMON, ubx.MonVER, p)
}

// Ack is an UBX-ACK-ACK (OK) or -NAK for the message Class/ID.
type Ack struct {
	Class, ID byte
	OK        bool
}

// DecodeAck reads an ACK-ACK or ACK-NAK frame.
func DecodeAck(fr *gnss.Frame) (Ack, bool) {
	if fr.Kind != gnss.FrameUBX || fr.Class != ubx.ClassACK || fr.ID > ubx.AckAck || len(fr.Data) < 2 {
		return Ack{}, false
	}
	return Ack{Class: fr.Data[0], ID: fr.Data[1], OK: fr.ID == ubx.AckAck}, true
}

// AppendAck appends an ACK-ACK (ok) or ACK-NAK for class/id.
func AppendAck(dst []byte, class, id byte, ok bool) []byte {
	msg := byte(ubx.AckNak)
	if ok {
		msg = ubx.AckAck
	}
	return ubx.Append(dst, ubx.ClassACK, msg, []byte{class, id})
}

// Configuration keys of generation 9+ used here (ZED-F9T interface
// description, "Configuration interface").
const (
	keyUART1Baud    = 0x40520001
	keyUART1InUBX   = 0x10730001
	keyUART1InNMEA  = 0x10730002
	keyUART1OutUBX  = 0x10740001
	keyUART1OutNMEA = 0x10740002
	keyRateMeas     = 0x30210001
	keyRateNav      = 0x30210002
	keyRateTimeRef  = 0x20210003
	keyTPPulseDef   = 0x20050023
	keyTPLengthDef  = 0x20050030
	keyTPPeriod     = 0x40050002
	keyTPPeriodLock = 0x40050003
	keyTPLen        = 0x40050004
	keyTPLenLock    = 0x40050005
	keyTPEnable     = 0x10050007
	keyTPSyncGNSS   = 0x10050008
	keyTPUseLocked  = 0x10050009
	keyTPAlignTOW   = 0x1005000a
	keyTPPolarity   = 0x1005000b
	keyTPTimeGrid   = 0x2005000c
	// CFG-TP-ANT_CABLEDELAY, I2 ns (the receiver fires the pulse that
	// much earlier).
	keyTPAntCableDelay = 0x30050001
	keyTModeMode       = 0x20030001
	keyTModePosType    = 0x20030002
	keyTModeLat        = 0x40030009
	keyTModeLon        = 0x4003000a
	keyTModeHeight     = 0x4003000b
	keyTModeLatHP      = 0x2003000c
	keyTModeLonHP      = 0x2003000d
	keyTModeHeightHP   = 0x2003000e
	keyTModeFixedAcc   = 0x4003000f
	keyTModeSvinMin    = 0x40030010
	keyTModeSvinAccLm  = 0x40030011
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
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgVALSET, appendKeyValues([]byte{0, layers, 0, 0}, kv))
}

// appendKeyValues appends each key ID and its value in the size the key
// gives.
func appendKeyValues(p []byte, kv []KeyValue) []byte {
	for _, x := range kv {
		p = binary.LittleEndian.AppendUint32(p, x.Key)
		for i := 0; i < keySize(x.Key); i++ {
			p = append(p, byte(x.Value>>(8*i)))
		}
	}
	return p
}

// DecodeValset reads a CFG-VALSET payload; ok is false when a key has no
// size (malformed) or the payload ends inside a value.
func DecodeValset(p []byte) (layers byte, kv []KeyValue, ok bool) {
	if len(p) < 4 || p[0] > 1 {
		return 0, nil, false
	}
	kv, ok = decodeKeyValues(p[4:])
	if !ok {
		return 0, nil, false
	}
	return p[1], kv, true
}

// decodeKeyValues reads the key-value pairs of a CFG-VALSET or of a
// CFG-VALGET answer: each a 4-byte key ID and a value whose size the key
// itself gives.
func decodeKeyValues(p []byte) (kv []KeyValue, ok bool) {
	for i := 0; i < len(p); {
		if i+4 > len(p) {
			return nil, false
		}
		k := binary.LittleEndian.Uint32(p[i:])
		n := keySize(k)
		if n == 0 || i+4+n > len(p) {
			return nil, false
		}
		var v uint64
		for j := 0; j < n; j++ {
			v |= uint64(p[i+4+j]) << (8 * j)
		}
		kv = append(kv, KeyValue{k, v})
		i += 4 + n
	}
	return kv, true
}

// Layers a CFG-VALGET reads from: one, by number (not the bit mask of
// CFG-VALSET).
const (
	GetRAM     = 0 // the configuration in effect
	GetBBR     = 1
	GetFlash   = 2
	GetDefault = 7
)

// MaxValgetKeys is the most keys one CFG-VALGET may ask for; the receiver
// refuses more (ZED-F9T interface description, UBX-CFG-VALGET).
const MaxValgetKeys = 64

// AppendValgetPoll appends the CFG-VALGET poll (version 0) for keys in
// layer, from the first (position 0).
func AppendValgetPoll(dst []byte, layer byte, keys ...uint32) []byte {
	p := []byte{0, layer, 0, 0}
	for _, k := range keys {
		p = binary.LittleEndian.AppendUint32(p, k)
	}
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgVALGET, p)
}

// DecodeValgetPoll reads a CFG-VALGET poll (gnss-sim): ok is false for
// another version, a length that is not whole keys, or more than
// MaxValgetKeys keys.
func DecodeValgetPoll(p []byte) (layer byte, keys []uint32, ok bool) {
	if len(p) < 4 || p[0] != 0 || (len(p)-4)%4 != 0 || (len(p)-4)/4 > MaxValgetKeys {
		return 0, nil, false
	}
	for i := 4; i < len(p); i += 4 {
		keys = append(keys, binary.LittleEndian.Uint32(p[i:]))
	}
	return p[1], keys, true
}

// AppendValgetAnswer appends the CFG-VALGET answer (version 1) holding kv
// as read from layer.
func AppendValgetAnswer(dst []byte, layer byte, kv ...KeyValue) []byte {
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgVALGET, appendKeyValues([]byte{1, layer, 0, 0}, kv))
}

// DecodeValgetAnswer reads a CFG-VALGET answer (version 1): the layer it
// was read from and the keys with their values.
func DecodeValgetAnswer(p []byte) (layer byte, kv []KeyValue, ok bool) {
	if len(p) < 4 || p[0] != 1 {
		return 0, nil, false
	}
	kv, ok = decodeKeyValues(p[4:])
	if !ok {
		return 0, nil, false
	}
	return p[1], kv, true
}

// Legacy payloads (generations 6 to 8).

// AppendCfgMsg appends a CFG-MSG setting class/id to rate on the port it
// arrives on (the 3-byte form).
func AppendCfgMsg(dst []byte, class, id, rate byte) []byte {
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgMSG, []byte{class, id, rate})
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
	return ubx.Append(dst, ubx.ClassCFG, ubx.CfgPRT, p)
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
		keyTPAntCableDelay: "TP-ANT_CABLEDELAY",
		keyTModeMode:       "TMODE-MODE", keyTModePosType: "TMODE-POS_TYPE", keyTModeLat: "TMODE-LAT", keyTModeLon: "TMODE-LON",
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
