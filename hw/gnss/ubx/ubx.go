// Package ubx is the u-blox UBX wire format's one table: the message
// classes and ids sitegm reads or sends, and the frame (sync 0xB5 0x62,
// class, id, little-endian length, payload, 8-bit Fletcher checksum over
// class..payload). hw/gnss decodes with it, hw/gnss/ubxcfg configures a
// receiver with it. Sources: the u-blox 6 and u-blox 8/M8 receiver
// descriptions, and the ZED-F9T / M10 interface descriptions.
package ubx

// Message classes and ids, with their payload sizes where fixed.
const (
	ClassNAV = 0x01
	ClassINF = 0x04
	ClassACK = 0x05
	ClassCFG = 0x06
	ClassMON = 0x0A
	ClassTIM = 0x0D
	ClassSEC = 0x27

	NavStatus  = 0x03 // NAV-STATUS, 16 bytes: fix type and flags, spoofing state (protocol 18+)
	NavSol     = 0x06 // NAV-SOL, 52 bytes: GPS week and time, fix (before NAV-PVT; dropped in generation 9+)
	NavPVT     = 0x07 // NAV-PVT, 92 bytes (84 in protocol 14, u-blox 7): UTC date and time, fix
	NavTimeGPS = 0x20 // NAV-TIMEGPS, 16 bytes: GPS week and time, leap seconds
	NavTimeUTC = 0x21 // NAV-TIMEUTC, 20 bytes
	NavTimeLS  = 0x26 // NAV-TIMELS, 24 bytes
	NavSVIN    = 0x3B // NAV-SVIN, 40 bytes
	NavEOE     = 0x61 // NAV-EOE, 4 bytes: end of the epoch's navigation messages (protocol 18+)

	TimTP   = 0x01 // TIM-TP, 16 bytes
	TimSVIN = 0x04 // TIM-SVIN, 28 bytes

	MonVER = 0x04 // MON-VER, 40 + 30 per extension
	MonHW  = 0x09 // MON-HW, 60 bytes
	MonRF  = 0x38 // MON-RF, 4 + 24 per block

	SecSig = 0x09 // SEC-SIG (version 1: 12 bytes)

	AckNak = 0x00
	AckAck = 0x01

	CfgPRT    = 0x00
	CfgMSG    = 0x01
	CfgRATE   = 0x08
	CfgCFG    = 0x09
	CfgTMODE  = 0x1D // u-blox 6 timing receivers
	CfgTP5    = 0x31
	CfgTMODE2 = 0x3D
	CfgTMODE3 = 0x71
	CfgVALSET = 0x8A
	CfgVALGET = 0x8B
)

// Append appends a UBX frame of class and id carrying payload.
func Append(dst []byte, class, id byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0xB5, 0x62, class, id, byte(len(payload)), byte(len(payload)>>8))
	dst = append(dst, payload...)
	var a, b byte
	for _, x := range dst[start+2:] {
		a += x
		b += a
	}
	return append(dst, a, b)
}
