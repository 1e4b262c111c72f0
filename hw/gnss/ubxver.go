package gnss

import (
	"strings"

	"sitegm/hw/gnss/ubx"
)

// Version is UBX MON-VER: what the receiver is (u-blox 8/M8 receiver
// description, UBX-MON-VER: swVersion CH[30], hwVersion CH[10], then any
// number of 30-character extensions such as "FWVER=TIM 2.20",
// "PROTVER=29.00", "MOD=ZED-F9T"; every string NUL-padded).
type Version struct {
	Software, Hardware string
	Extensions         []string
	// From the extensions, "" when not told.
	Module, Firmware, Protocol string
}

func (Version) event() {}

// MaxVersionExtensions bounds the extensions kept: a real receiver sends fewer
// than ten; the frame's length (at most the framer's limit) bounds the
// rest.
const MaxVersionExtensions = 16

// ParseMonVer reads a MON-VER payload: 30 + 10 bytes, then whole 30-byte
// extensions; anything else is not one.
func ParseMonVer(p []byte) (Version, bool) {
	if len(p) < 40 || (len(p)-40)%30 != 0 {
		return Version{}, false
	}
	v := Version{Software: fixedString(p[:30]), Hardware: fixedString(p[30:40])}
	for i := 40; i+30 <= len(p) && len(v.Extensions) < MaxVersionExtensions; i += 30 {
		e := fixedString(p[i : i+30])
		v.Extensions = append(v.Extensions, e)
		k, val, _ := strings.Cut(e, "=")
		switch k {
		case "MOD":
			v.Module = val
		case "FWVER":
			v.Firmware = val
		case "PROTVER":
			v.Protocol = val
		}
	}
	return v, true
}

// fixedString is a NUL-padded field as printable text (a receiver's
// strings are ASCII; anything else is dropped, not shown).
func fixedString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7F {
			out = append(out, c)
		}
	}
	return strings.TrimSpace(string(out))
}

// String is the receiver as an operator names it: "ZED-F9T firmware
// TIM 2.20 (hardware 00190000, software ROM SPG 5.10, protocol 29.00)".
func (v Version) String() string {
	name := v.Module
	if name == "" {
		name = "u-blox receiver"
	}
	s := name
	if v.Firmware != "" {
		s += " firmware " + v.Firmware
	}
	s += " (hardware " + v.Hardware + ", software " + v.Software
	if v.Protocol != "" {
		s += ", protocol " + v.Protocol
	}
	return s + ")"
}

func decodeVersion(fr *Frame) (Version, bool) {
	if fr.Class != ubx.ClassMON || fr.ID != ubx.MonVER {
		return Version{}, false
	}
	return ParseMonVer(fr.Data)
}
