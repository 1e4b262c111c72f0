package nic

import "testing"

// What names a slave PHC: a listed device once, never the disciplined
// one; an interface without hardware timestamping (loopback) is none, a
// listed interface without a PHC is an error to report.
func TestSlaveDevices(t *testing.T) {
	got := SlaveDevices("/dev/ptp0", []string{"/dev/ptp1", "/dev/ptp1", "/dev/ptp0", "lo"}, []string{"lo"})
	if len(got) != 2 || got[0].Dev != "/dev/ptp1" || got[0].Err != nil || got[1].Dev != "lo" || got[1].Err == nil {
		t.Fatalf("%+v", got)
	}
}
