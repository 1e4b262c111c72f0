package gnss

import (
	"encoding/binary"
	"sitegm/hw/gnss/ubx"
	"time"
)

// The UBX timing messages decoded here (u-blox 8/M8 receiver description
// and protocol specification, UBX-13003221; same layouts in the F9T
// interface description); their classes and ids are package ubx's.

// TimePulse is UBX TIM-TP: the time of the NEXT time pulse and its
// quantisation error. The receiver sends it ahead of the edge it describes,
// so a pairer applies QErr to the following PPS edge.
type TimePulse struct {
	TowMS       uint32 // time of week of the pulse, ms
	TowSubMS    uint32 // sub-millisecond part, 2^-32 ms
	QErr        int32  // quantisation error of the pulse, ps (add to the edge time to get the true edge)
	Week        uint16
	TimeBaseUTC bool // flags bit 0: pulse aligned to UTC (else GNSS time)
	UTCValid    bool // flags bit 1: UTC available
	QErrInvalid bool // flags bit 4 (protocol 32+): qErr not usable
	At          time.Time
}

func (TimePulse) event() {}

// LeapInfo is UBX NAV-TIMELS: the receiver's leap-second knowledge.
type LeapInfo struct {
	CurrLS        int8  // GPS-UTC leap seconds now (18 since 2017)
	CurrLSSource  uint8 // 0 firmware default ... 2 GPS ... 255 unknown
	LSChange      int8  // -1, 0 or +1: the announced next leap second
	LSSource      uint8 // source of the announcement, 0 none
	TimeToLSEvent int32 // seconds until the announced event (negative after it)
	DateWeek      uint16
	DateDay       uint16
	CurrLSValid   bool
	TimeToValid   bool
	At            time.Time
}

func (LeapInfo) event() {}

// decodeUBX turns a UBX frame into an event, or nil for messages not used.
func decodeUBX(fr *Frame) (Event, bool) {
	p := fr.Data
	le := binary.LittleEndian
	switch {
	case fr.Class == ubx.ClassTIM && fr.ID == ubx.TimTP && len(p) >= 16:
		flags := p[14]
		return TimePulse{
			TowMS: le.Uint32(p[0:]), TowSubMS: le.Uint32(p[4:]), QErr: int32(le.Uint32(p[8:])),
			Week: le.Uint16(p[12:]), TimeBaseUTC: flags&1 != 0, UTCValid: flags&2 != 0,
			QErrInvalid: flags&0x10 != 0, At: fr.At,
		}, true
	case fr.Class == ubx.ClassNAV && fr.ID == ubx.NavTimeLS && len(p) >= 24:
		return LeapInfo{
			CurrLSSource: p[8], CurrLS: int8(p[9]), LSSource: p[10], LSChange: int8(p[11]),
			TimeToLSEvent: int32(le.Uint32(p[12:])), DateWeek: le.Uint16(p[16:]), DateDay: le.Uint16(p[18:]),
			CurrLSValid: p[23]&1 != 0, TimeToValid: p[23]&2 != 0, At: fr.At,
		}, true
	}
	return nil, false
}

// UTC is the UTC second the pulse marks: its week and time of week on the
// pulse's time base, UTC or GPS time (UBX TIM-TP flags bit 0; GPS time
// is UTC plus gpsMinusUTC(t) seconds at t, IS-GPS-200 20.3.3.5.2.4).
func (tp TimePulse) UTC(gpsMinusUTC func(time.Time) int) time.Time {
	gpsEpoch := time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)
	t := gpsEpoch.Add(time.Duration(tp.Week)*7*24*time.Hour + time.Duration(tp.TowMS)*time.Millisecond)
	if !tp.TimeBaseUTC {
		t = t.Add(-time.Duration(gpsMinusUTC(t)) * time.Second)
	}
	return t.Round(time.Second)
}
