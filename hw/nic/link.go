package nic

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Link is what the kernel says of an interface's link, read-only: what a
// commissioning report records.
type Link struct {
	Exists    bool
	OperState string // up, down, lowerlayerdown, unknown (RFC 2863 names, as sysfs gives them)
	Carrier   bool
	// CarrierChanges counts the carrier's changes since the interface was
	// made (sysfs carrier_changes); -1 unknown.
	CarrierChanges int
	SpeedMbps      int    // -1 unknown (virtual links, no carrier)
	Duplex         string // full, half, unknown
	// VLAN is the 802.1Q tag of a VLAN interface (0: not one) on Parent.
	VLAN   int
	Parent string
	// Addresses are its IP addresses with their prefixes.
	Addresses []string
}

// sysRoot is where sysfs is (tests point it elsewhere).
var sysRoot = "/sys"

// procVLAN is the 8021q module's table of VLAN interfaces.
var procVLAN = "/proc/net/vlan/config"

func readSys(iface, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(sysRoot, "class", "net", iface, name))
	return strings.TrimSpace(string(b)), err
}

// LinkOf reads iface's link. A missing interface is Exists false, no
// error; sysfs files a driver does not fill (speed on a down link) are
// unknown.
func LinkOf(iface string) (Link, error) {
	l := Link{CarrierChanges: -1, SpeedMbps: -1, Duplex: "unknown"}
	if strings.ContainsAny(iface, "/\x00") || iface == "" || iface == "." || iface == ".." {
		return l, fmt.Errorf("%q is not an interface name", iface)
	}
	op, err := readSys(iface, "operstate")
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	l.Exists, l.OperState = true, op
	if c, err := readSys(iface, "carrier"); err == nil {
		l.Carrier = c == "1"
	}
	if c, err := readSys(iface, "carrier_changes"); err == nil {
		if n, err := strconv.Atoi(c); err == nil {
			l.CarrierChanges = n
		}
	}
	if s, err := readSys(iface, "speed"); err == nil {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			l.SpeedMbps = n
		}
	}
	if d, err := readSys(iface, "duplex"); err == nil && d != "" {
		l.Duplex = d
	}
	l.VLAN, l.Parent = vlanOf(iface)
	if ifi, err := net.InterfaceByName(iface); err == nil {
		if as, err := ifi.Addrs(); err == nil {
			for _, a := range as {
				l.Addresses = append(l.Addresses, a.String())
			}
		}
	}
	return l, nil
}

// vlanOf finds iface in the 8021q table ("eth0.10 | 10 | eth0" after two
// header lines).
func vlanOf(iface string) (int, string) {
	f, err := os.Open(procVLAN)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "|")
		if len(p) != 3 || strings.TrimSpace(p[0]) != iface {
			continue
		}
		if id, err := strconv.Atoi(strings.TrimSpace(p[1])); err == nil {
			return id, strings.TrimSpace(p[2])
		}
	}
	return 0, ""
}

// rxFilterNames are the HWTSTAMP_FILTER_* values (linux/net_tstamp.h).
var rxFilterNames = map[int32]string{
	unix.HWTSTAMP_FILTER_NONE: "none", unix.HWTSTAMP_FILTER_ALL: "all", unix.HWTSTAMP_FILTER_SOME: "some",
	unix.HWTSTAMP_FILTER_PTP_V1_L4_EVENT: "ptp-v1-l4-event", unix.HWTSTAMP_FILTER_PTP_V1_L4_SYNC: "ptp-v1-l4-sync",
	unix.HWTSTAMP_FILTER_PTP_V1_L4_DELAY_REQ: "ptp-v1-l4-delay-req", unix.HWTSTAMP_FILTER_PTP_V2_L4_EVENT: "ptp-v2-l4-event",
	unix.HWTSTAMP_FILTER_PTP_V2_L4_SYNC: "ptp-v2-l4-sync", unix.HWTSTAMP_FILTER_PTP_V2_L4_DELAY_REQ: "ptp-v2-l4-delay-req",
	unix.HWTSTAMP_FILTER_PTP_V2_L2_EVENT: "ptp-v2-l2-event", unix.HWTSTAMP_FILTER_PTP_V2_L2_SYNC: "ptp-v2-l2-sync",
	unix.HWTSTAMP_FILTER_PTP_V2_L2_DELAY_REQ: "ptp-v2-l2-delay-req", unix.HWTSTAMP_FILTER_PTP_V2_EVENT: "ptp-v2-event",
	unix.HWTSTAMP_FILTER_PTP_V2_SYNC: "ptp-v2-sync", unix.HWTSTAMP_FILTER_PTP_V2_DELAY_REQ: "ptp-v2-delay-req",
	unix.HWTSTAMP_FILTER_NTP_ALL: "ntp-all",
}

// Applied reads the NIC's hardware timestamping as set now
// (SIOCGHWTSTAMP, which changes nothing): "tx on, rx ptp-v2-event", or
// "off". A driver without the request says so in the error.
func Applied(iface string) (string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	c, err := unix.IoctlGetHwTstamp(fd, iface)
	if err != nil {
		return "", fmt.Errorf("%s: SIOCGHWTSTAMP: %w", iface, err)
	}
	if c.Tx_type == unix.HWTSTAMP_TX_OFF && c.Rx_filter == unix.HWTSTAMP_FILTER_NONE {
		return "off", nil
	}
	tx := "off"
	switch c.Tx_type {
	case unix.HWTSTAMP_TX_ON:
		tx = "on"
	case unix.HWTSTAMP_TX_ONESTEP_SYNC, unix.HWTSTAMP_TX_ONESTEP_P2P:
		tx = "one-step"
	}
	rx, ok := rxFilterNames[c.Rx_filter]
	if !ok {
		rx = fmt.Sprintf("filter %d", c.Rx_filter)
	}
	return "tx " + tx + ", rx " + rx, nil
}
