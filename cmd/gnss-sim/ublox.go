package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"sitegm/clock/sim"
	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
	"sitegm/hw/gnss/ubxcfg"
)

// ublox is the simulated receiver's configuration: what it outputs, at
// what rate, and how it answers what it is sent (UBX-MON-VER polls,
// ACK-ACK or ACK-NAK to CFG frames), as a u-blox timing receiver of the
// chosen model does. `sitegm gnss configure` is tested against it.
type ublox struct {
	mu      sync.Mutex
	model   string
	gen     int
	outUBX  bool
	outNMEA bool
	// ubxMsgs are the UBX messages output each second, by name
	// ("NAV-PVT"); nmeaOff the NMEA sentences switched off.
	ubxMsgs map[string]bool
	nmeaOff map[string]bool
	baud    int
	legacy  bool // --ubx: TIM-TP and NAV-TIMELS after NMEA (the old behaviour)
	// leapUnknown: the receiver has not yet read the leap second count
	// from the satellites (a cold start): it reports its firmware's
	// default (NAV-TIMELS srcOfCurrLs 0, PUBX,04 "18D").
	leapUnknown bool
	// noPUBX: the receiver ignores PUBX polls (it is not a u-blox).
	noPUBX bool
	// missMonVer: MON-VER polls still to leave unanswered.
	missMonVer int
	// lsWrong, when not 0, is the GPS-UTC count the receiver reports
	// (NAV-TIMELS, PUBX,04) instead of the true one: a receiver that
	// contradicts the leap second table (its UTC output stays right).
	lsWrong int
	// last is the latest second sent and its GPS-UTC, for a PUBX,04 poll.
	last   time.Time
	lastLS int
	// held is what each configuration key was last set to (generation
	// 9+), for a CFG-VALGET; a key never set reads 0.
	held map[uint32]uint64
}

// models are the receivers gnss-sim can play: MON-VER strings and the
// messages each firmware knows (a real receiver refuses the others).
var models = map[string]struct {
	gen     int
	sw, hw  string
	ext     []string
	unknown []string // UBX messages (by name) this firmware refuses
}{
	"zed-f9t": {9, "EXT CORE 1.00 (3fda8e)", "00190000", []string{"ROM BASE 0x118B2060", "FWVER=TIM 2.01", "PROTVER=29.00", "MOD=ZED-F9T"},
		[]string{"SEC-SIG", "MON-HW", "NAV-SOL"}},
	"neo-m8t": {8, "ROM CORE 3.01 (107888)", "00080000", []string{"FWVER=TIM 1.10", "PROTVER=22.00", "MOD=NEO-M8T"},
		[]string{"SEC-SIG", "MON-RF", "NAV-SVIN"}},
}

func newUblox(model, protocol string, baud int, legacyUBX bool) (*ublox, error) {
	m, ok := models[model]
	if !ok {
		return nil, fmt.Errorf("--model %q: want zed-f9t or neo-m8t", model)
	}
	u := &ublox{model: model, gen: m.gen, baud: baud, ubxMsgs: map[string]bool{}, nmeaOff: map[string]bool{}, legacy: legacyUBX,
		held: map[uint32]uint64{}}
	switch protocol {
	case "nmea":
		u.outNMEA = true
	case "ubx", "both":
		u.outUBX, u.outNMEA = true, protocol == "both"
		health := "MON-RF"
		if m.gen < 9 {
			health = "MON-HW"
		}
		for _, n := range []string{"NAV-PVT", "NAV-TIMEUTC", "NAV-TIMELS", "NAV-STATUS", "TIM-TP", "TIM-SVIN", health} {
			u.ubxMsgs[n] = true
		}
	default:
		return nil, fmt.Errorf("--protocol %q: want ubx, nmea or both", protocol)
	}
	return u, nil
}

func (u *ublox) knows(name string) bool {
	for _, n := range models[u.model].unknown {
		if n == name {
			return false
		}
	}
	return true
}

// lineBaud is the rate the port runs at now.
func (u *ublox) lineBaud() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.baud
}

// handle answers one frame the receiver was sent; the reply (if any) is
// returned for the caller to write.
func (u *ublox) handle(fr *gnss.Frame) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	if fr.Kind == gnss.FrameNMEA && string(fr.Data) == "PUBX,04" && u.outNMEA && !u.last.IsZero() && !u.noPUBX {
		// The PUBX,04 poll (u-blox M8 receiver description): time of day,
		// clock and the leap second count.
		return gnss.AppendPUBX04(nil, u.last, u.lastLS, u.leapUnknown)
	}
	if fr.Kind != gnss.FrameUBX {
		return nil
	}
	// Answers are UBX: with UBX output off the port says nothing, though
	// what it is sent still takes effect.
	const cfg = 0x06
	switch {
	case fr.Class == 0x0A && fr.ID == 0x04 && len(fr.Data) == 0: // MON-VER poll
		if u.missMonVer > 0 {
			u.missMonVer--
			fmt.Printf("gnss-sim: MON-VER poll left unanswered (--miss-monver)\n")
			return nil
		}
		if !u.outUBX {
			return nil
		}
		m := models[u.model]
		return ubxcfg.AppendMonVer(nil, m.sw, m.hw, m.ext...)
	case fr.Class != cfg:
		return nil
	case fr.ID == ubx.CfgVALGET:
		if !u.outUBX {
			return nil
		}
		return u.valget(fr.Data)
	}
	ok := u.apply(fr.ID, fr.Data)
	// What it was told, for whoever reads the test's output.
	fmt.Printf("gnss-sim: %s %s\n", ubxcfg.UBXName(fr.Class, fr.ID), map[bool]string{true: "acknowledged", false: "refused"}[ok])
	if !u.outUBX {
		return nil
	}
	return ubxcfg.AppendAck(nil, fr.Class, fr.ID, ok)
}

// apply carries out a CFG message; false is a refusal (ACK-NAK).
func (u *ublox) apply(id byte, p []byte) bool {
	switch id {
	case 0x8A: // CFG-VALSET (generation 9+)
		if u.gen < 9 {
			return false
		}
		layers, kv, ok := ubxcfg.DecodeValset(p)
		if !ok || layers == 0 {
			return false
		}
		// A VALSET is all or nothing: one unknown key refuses the lot.
		for _, x := range kv {
			if !u.known(x.Key) {
				return false
			}
		}
		for _, x := range kv {
			name, _ := ubxcfg.ConfigKeyName(x.Key)
			u.set(name, x.Value)
			u.held[x.Key] = x.Value
		}
		return true
	case 0x01: // CFG-MSG, the 3-byte form (this port) or 8 bytes (per port; UART1 is the second)
		if len(p) != 3 && len(p) != 8 {
			return false
		}
		rate := p[2]
		if len(p) == 8 {
			rate = p[3]
		}
		name := ubxcfg.UBXName(p[0], p[1])
		switch {
		case strings.HasPrefix(name, "NMEA-"):
			u.set("MSGOUT-"+name, uint64(rate))
		case strings.HasPrefix(name, "UBX-") && !strings.Contains(name, "UBX-CFG") && u.knows(strings.TrimPrefix(name, "UBX-")):
			u.set("MSGOUT-"+name, uint64(rate))
		default:
			return false
		}
		return true
	case 0x00: // CFG-PRT
		baud, out, ok := ubxcfg.DecodeCfgPrt(p)
		if !ok {
			return false
		}
		u.baud, u.outUBX, u.outNMEA = baud, out&ubxcfg.ProtoUBX != 0, out&ubxcfg.ProtoNMEA != 0
		return true
	case 0x31: // CFG-TP5
		return len(p) == 32
	case 0x08: // CFG-RATE
		return len(p) == 6 && binary.LittleEndian.Uint16(p) == 1000
	case 0x09: // CFG-CFG
		return len(p) == 13 || len(p) == 12
	case 0x3D: // CFG-TMODE2: M8T only
		return u.gen == 8 && len(p) == 28
	}
	return false // TMODE (u-blox 6), TMODE3 (M8P): not these models
}

// known says whether this firmware has configuration key k.
func (u *ublox) known(k uint32) bool {
	name, ok := ubxcfg.ConfigKeyName(k)
	return ok && !(strings.HasPrefix(name, "MSGOUT-UBX-") && !u.knows(strings.TrimPrefix(name, "MSGOUT-UBX-")))
}

// valget answers a CFG-VALGET poll as generation 9 firmware does: the
// values and an ACK-ACK, or only an ACK-NAK when the poll is malformed,
// names an unknown key or layer, or the firmware is older.
func (u *ublox) valget(p []byte) []byte {
	layer, keys, ok := ubxcfg.DecodeValgetPoll(p)
	ok = ok && u.gen >= 9 && (layer <= ubxcfg.GetFlash || layer == ubxcfg.GetDefault)
	var kv []ubxcfg.KeyValue
	for _, k := range keys {
		ok = ok && u.known(k)
		kv = append(kv, ubxcfg.KeyValue{Key: k, Value: u.held[k]})
	}
	if !ok {
		fmt.Printf("gnss-sim: UBX-CFG-VALGET refused\n")
		return ubxcfg.AppendAck(nil, ubx.ClassCFG, ubx.CfgVALGET, false)
	}
	return ubxcfg.AppendAck(ubxcfg.AppendValgetAnswer(nil, layer, kv...), ubx.ClassCFG, ubx.CfgVALGET, true)
}

// set applies one named setting.
func (u *ublox) set(name string, v uint64) {
	switch {
	case name == "UART1-BAUDRATE":
		u.baud = int(v)
	case name == "UART1OUTPROT-UBX":
		u.outUBX = v != 0
	case name == "UART1OUTPROT-NMEA":
		u.outNMEA = v != 0
	case strings.HasPrefix(name, "MSGOUT-UBX-"):
		u.ubxMsgs[strings.TrimPrefix(name, "MSGOUT-UBX-")] = v != 0
	case strings.HasPrefix(name, "MSGOUT-NMEA-"):
		u.nmeaOff[strings.TrimPrefix(name, "MSGOUT-NMEA-")] = v == 0
	}
}

// listen reads what is sent to the receiver and answers it, until ctx
// ends. A pty master reads EIO while no one has the slave side open
// (before the reader comes, and between its reopenings): wait and read
// again.
func (u *ublox) listen(ctx context.Context, r io.Reader, reply func([]byte)) {
	fr := gnss.NewFramer(func(f *gnss.Frame) {
		if b := u.handle(f); b != nil {
			reply(b)
		}
	})
	buf := make([]byte, 1024)
	for ctx.Err() == nil {
		n, err := r.Read(buf)
		if n > 0 {
			fr.Write(buf[:n], time.Now())
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// epoch returns what the receiver sends for second s.
func (u *ublox) epoch(s, next sim.Second, cfg sim.ReceiverConfig, types []string, talker string) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last, u.lastLS = s.Label, u.reported(gpsMinusUTC(s, cfg))
	ep := gnss.SimEpoch{Time: s.Label, Leap60: s.Leap60, Valid: s.Valid, Sats: cfg.Sats, InView: max(cfg.Sats+3, 12), Talker: talker}
	var b []byte
	if u.outNMEA {
		var on []string
		for _, t := range types {
			if !u.nmeaOff[t] {
				on = append(on, t)
			}
		}
		b = gnss.AppendSimSentences(b, ep, on)
		if u.legacy && !u.outUBX {
			b = appendLegacyUBX(b, s, next, cfg, u.lsSource(), u.lsWrong)
		}
	}
	if !u.outUBX {
		return b
	}
	if !s.Valid {
		ep.Sats = 0
	}
	leaps := gpsMinusUTC(s, cfg)
	if u.ubxMsgs["NAV-PVT"] {
		b = gnss.AppendNavPVT(b, ep, leaps, 20)
	}
	if u.ubxMsgs["NAV-TIMEUTC"] {
		b = gnss.AppendNavTimeUTC(b, ep, leaps, 20, s.Valid)
	}
	if u.ubxMsgs["NAV-STATUS"] {
		spoof := byte(1)
		if s.Spoofing {
			spoof = 2
		}
		b = gnss.AppendNavStatus(b, ep, leaps, spoof)
	}
	if u.ubxMsgs["NAV-TIMELS"] {
		change, in := int8(0), int32(0)
		if cfg.Leap != nil {
			if end := cfg.Leap.Day.AddDate(0, 0, 1); s.Label.Before(end) {
				change, in = int8(cfg.Leap.Sign), int32(end.Sub(s.Label)/time.Second)
			}
		}
		b = gnss.AppendNavTimeLSFrom(b, int8(u.reported(leaps)), u.lsSource(), change, in)
	}
	if u.gen >= 9 {
		b = gnss.AppendNavEOE(b, ep, leaps)
	}
	if u.ubxMsgs["TIM-TP"] {
		// TIM-TP goes out after an edge and describes the next one.
		b = gnss.AppendTimTP(b, next.Label, next.QErrPS)
	}
	ant := gnss.AntennaOK
	switch s.Antenna {
	case "open":
		ant = gnss.AntennaOpen
	case "short":
		ant = gnss.AntennaShort
	}
	jam := gnss.JammingOK
	switch {
	case s.Jamming >= 200:
		jam = gnss.JammingCritical
	case s.Jamming >= 100:
		jam = gnss.JammingWarning
	}
	if u.ubxMsgs["MON-HW"] {
		b = gnss.AppendMonHW(b, ant, jam, uint8(s.Jamming))
	}
	if u.ubxMsgs["MON-RF"] {
		b = appendMonRF(b, ant, jam, uint8(s.Jamming))
	}
	if u.ubxMsgs["TIM-SVIN"] && (s.Survey.Active || s.Survey.Valid) {
		// The position's accuracy improves as 1/sqrt(time) from 20 m.
		secs := max(s.Survey.Elapsed.Seconds(), 1)
		b = gnss.AppendTimSVIN(b, gnss.Survey{Active: s.Survey.Active, Valid: s.Survey.Valid, Duration: s.Survey.Elapsed.Truncate(time.Second),
			Observations: uint32(secs), MeanAcc: 20 / math.Sqrt(secs)})
	}
	return b
}

// appendLegacyUBX is --ubx with NMEA: TIM-TP about the next pulse, and
// NAV-TIMELS every fifth second, as a receiver configured to send it at a
// low rate does (every second while a leap second is announced).
func appendLegacyUBX(b []byte, s, next sim.Second, cfg sim.ReceiverConfig, src byte, lsWrong int) []byte {
	b = gnss.AppendTimTP(b, next.Label, next.QErrPS)
	ls := gpsMinusUTC(s, cfg)
	if lsWrong != 0 {
		ls = lsWrong
	}
	switch {
	case cfg.Leap != nil:
		end := cfg.Leap.Day.AddDate(0, 0, 1)
		b = gnss.AppendNavTimeLSFrom(b, int8(ls), src, int8(cfg.Leap.Sign), int32(end.Sub(s.Label)/time.Second))
	case s.N%5 == 0:
		b = gnss.AppendNavTimeLSFrom(b, int8(ls), src, 0, 0)
	}
	return b
}

// reported is the GPS-UTC count the receiver reports when the true one
// is ls.
func (u *ublox) reported(ls int) int {
	if u.lsWrong != 0 {
		return u.lsWrong
	}
	return ls
}

// lsSource is NAV-TIMELS's srcOfCurrLs: 2 (GPS), or 0 (the firmware's
// default) while the receiver does not know the count.
func (u *ublox) lsSource() byte {
	if u.leapUnknown {
		return 0
	}
	return 2
}

// gpsMinusUTC is GPS-UTC at second s: 18 s, one more after an inserted
// leap second (one fewer after a deleted one). NAV-TIMELS's currLs counts
// the event once it is past (u-blox: timeToLsEvent < 0 is "the last
// event", and currLs already includes it).
func gpsMinusUTC(s sim.Second, cfg sim.ReceiverConfig) int {
	leaps := 18
	if cfg.Leap != nil && !s.Label.Before(cfg.Leap.Day.AddDate(0, 0, 1)) {
		leaps += cfg.Leap.Sign
	}
	return leaps
}

// appendMonRF appends a MON-RF with one RF block (version 0): jamming
// state, antenna status (2 ok, 3 short, 4 open), CW jamming indicator.
func appendMonRF(dst []byte, ant gnss.Antenna, jam gnss.Jamming, jamInd uint8) []byte {
	p := make([]byte, 4+24)
	p[1] = 1
	b := p[4:]
	b[1] = byte(jam & 3)
	b[2] = map[gnss.Antenna]byte{gnss.AntennaOK: 2, gnss.AntennaShort: 3, gnss.AntennaOpen: 4}[ant]
	b[16] = jamInd
	return ubx.Append(dst, 0x0A, 0x38, p)
}
