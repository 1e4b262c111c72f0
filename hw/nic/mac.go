package nic

import (
	"crypto/sha256"
	"net"
	"os"
)

// MAC is the interface's hardware address, or for one without (lo) a
// locally administered one derived from the machine id and the interface's
// name: stable across restarts, different per host. PTPv2's clock identity
// (IEEE 1588-2019 7.5.2.2.2) and PTPv1's UUID come from it.
func MAC(iface string) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	mac := ifi.HardwareAddr
	if len(mac) != 6 || (mac[0]|mac[1]|mac[2]|mac[3]|mac[4]|mac[5]) == 0 {
		id, _ := os.ReadFile("/etc/machine-id")
		h := sha256.Sum256(append(id, iface...))
		// Bit 1 of the first octet: locally administered; bit 0 clear:
		// unicast (IEEE 802-2014 8.2.2).
		mac = net.HardwareAddr{h[0]&0xfc | 0x02, h[1], h[2], h[3], h[4], h[5]}
	}
	return mac, nil
}
