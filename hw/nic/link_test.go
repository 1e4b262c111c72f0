package nic

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLinkOf reads a VLAN interface's link from a made-up sysfs and
// 8021q table, as the kernel writes them.
func TestLinkOf(t *testing.T) {
	dir := t.TempDir()
	oldSys, oldVLAN := sysRoot, procVLAN
	t.Cleanup(func() { sysRoot, procVLAN = oldSys, oldVLAN })
	sysRoot, procVLAN = dir, filepath.Join(dir, "vlan-config")
	net := filepath.Join(dir, "class", "net", "eth0.10")
	os.MkdirAll(net, 0o755)
	for name, v := range map[string]string{"operstate": "up\n", "carrier": "1\n", "carrier_changes": "4\n", "speed": "1000\n", "duplex": "full\n"} {
		os.WriteFile(filepath.Join(net, name), []byte(v), 0o644)
	}
	os.WriteFile(procVLAN, []byte("VLAN Dev name    | VLAN ID\nName-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD\neth0.10        | 10  | eth0\neth0.20        | 20  | eth0\n"), 0o644)
	l, err := LinkOf("eth0.10")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Exists || l.OperState != "up" || !l.Carrier || l.CarrierChanges != 4 || l.SpeedMbps != 1000 || l.Duplex != "full" || l.VLAN != 10 || l.Parent != "eth0" {
		t.Errorf("%+v", l)
	}
	if l, err := LinkOf("eth9"); err != nil || l.Exists {
		t.Errorf("a missing interface: %+v %v", l, err)
	}
	if _, err := LinkOf("../../etc"); err == nil {
		t.Error("a path taken for an interface name")
	}
}
