// Package nic asks the kernel what a network interface can do for timing:
// its PTP hardware clock and its timestamping capabilities
// (ETHTOOL_GET_TS_INFO), and sets hardware timestamping up (SIOCSHWTSTAMP).
package nic

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// TSInfo is what ETHTOOL_GET_TS_INFO reports for an interface.
type TSInfo struct {
	Interface string
	// PHCIndex is N of /dev/ptpN, or -1 when the NIC has no PHC.
	PHCIndex int
	// SOTimestamping is the SOF_TIMESTAMPING_* flags the NIC supports.
	SOTimestamping uint32
	TxTypes        uint32 // 1<<HWTSTAMP_TX_*
	RxFilters      uint32 // 1<<HWTSTAMP_FILTER_*
}

// Hardware says the interface can timestamp in hardware both ways.
func (t TSInfo) Hardware() bool {
	need := uint32(unix.SOF_TIMESTAMPING_TX_HARDWARE | unix.SOF_TIMESTAMPING_RX_HARDWARE | unix.SOF_TIMESTAMPING_RAW_HARDWARE)
	return t.PHCIndex >= 0 && t.SOTimestamping&need == need
}

// PHCPath is /dev/ptpN, or "" without a PHC.
func (t TSInfo) PHCPath() string {
	if t.PHCIndex < 0 {
		return ""
	}
	return fmt.Sprintf("/dev/ptp%d", t.PHCIndex)
}

// GetTSInfo queries an interface.
func GetTSInfo(iface string) (TSInfo, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return TSInfo{}, err
	}
	defer unix.Close(fd)
	ti, err := unix.IoctlGetEthtoolTsInfo(fd, iface)
	if err != nil {
		return TSInfo{}, fmt.Errorf("%s: ETHTOOL_GET_TS_INFO: %w", iface, err)
	}
	return TSInfo{Interface: iface, PHCIndex: int(ti.Phc_index), SOTimestamping: ti.So_timestamping,
		TxTypes: ti.Tx_types, RxFilters: ti.Rx_filters}, nil
}

// PHCDevice resolves clock.phc: "/dev/ptpN" as is, an interface name to
// its PHC.
func PHCDevice(spec string) (string, error) {
	if strings.HasPrefix(spec, "/dev/") {
		return spec, nil
	}
	ti, err := GetTSInfo(spec)
	if err != nil {
		return "", err
	}
	if ti.PHCIndex < 0 {
		return "", fmt.Errorf("%s has no PTP hardware clock", spec)
	}
	return ti.PHCPath(), nil
}
