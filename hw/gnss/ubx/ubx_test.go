package ubx

import (
	"bytes"
	"testing"
)

// Frames as the u-blox descriptions print them: the MON-VER poll and a
// CFG-RATE of 1000 ms, 1 cycle, UTC.
func TestAppend(t *testing.T) {
	for _, c := range []struct {
		class, id byte
		payload   []byte
		want      []byte
	}{
		{ClassMON, MonVER, nil, []byte{0xB5, 0x62, 0x0A, 0x04, 0x00, 0x00, 0x0E, 0x34}},
		{ClassCFG, CfgRATE, []byte{0xE8, 0x03, 0x01, 0x00, 0x00, 0x00},
			[]byte{0xB5, 0x62, 0x06, 0x08, 0x06, 0x00, 0xE8, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x37}},
	} {
		if got := Append([]byte{0xAA}, c.class, c.id, c.payload); !bytes.Equal(got[1:], c.want) || got[0] != 0xAA {
			t.Errorf("%02X-%02X: % X, want % X", c.class, c.id, got, c.want)
		}
	}
}
