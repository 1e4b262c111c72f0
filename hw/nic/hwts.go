package nic

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// EnableHardwareStamps turns on hardware timestamping for iface with
// SIOCSHWTSTAMP: transmit on, and a receive filter that covers PTP event
// messages (HWTSTAMP_FILTER_ALL when the driver offers it, which also
// covers PTPv1; else PTPv2 over UDP, else any PTPv2). Drivers may widen the
// filter they are asked for, so the configuration is read back
// (SIOCGHWTSTAMP) and returned.
func EnableHardwareStamps(iface string) (rxFilter int32, err error) {
	ti, err := GetTSInfo(iface)
	if err != nil {
		return 0, err
	}
	if ti.TxTypes&(1<<unix.HWTSTAMP_TX_ON) == 0 {
		return 0, fmt.Errorf("%s: no hardware transmit timestamps", iface)
	}
	var want int32 = -1
	for _, f := range []int32{unix.HWTSTAMP_FILTER_ALL, unix.HWTSTAMP_FILTER_PTP_V2_L4_EVENT, unix.HWTSTAMP_FILTER_PTP_V2_EVENT} {
		if ti.RxFilters&(1<<uint(f)) != 0 {
			want = f
			break
		}
	}
	if want < 0 {
		return 0, fmt.Errorf("%s: no hardware receive filter for PTP", iface)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	cfg := unix.HwTstampConfig{Tx_type: unix.HWTSTAMP_TX_ON, Rx_filter: want}
	if err := unix.IoctlSetHwTstamp(fd, iface, &cfg); err != nil {
		return 0, fmt.Errorf("%s: SIOCSHWTSTAMP: %w", iface, err)
	}
	got, err := unix.IoctlGetHwTstamp(fd, iface)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return cfg.Rx_filter, nil // old drivers without SIOCGHWTSTAMP: SET wrote back its choice
	}
	if err != nil {
		return 0, fmt.Errorf("%s: SIOCGHWTSTAMP: %w", iface, err)
	}
	if got.Tx_type != unix.HWTSTAMP_TX_ON {
		return 0, fmt.Errorf("%s: driver left transmit stamping off", iface)
	}
	return got.Rx_filter, nil
}

// FilterCoversV1 says whether a receive filter timestamps PTPv1 (IEEE
// 1588-2002) event messages too.
func FilterCoversV1(f int32) bool {
	switch f {
	case unix.HWTSTAMP_FILTER_ALL, unix.HWTSTAMP_FILTER_PTP_V1_L4_EVENT,
		unix.HWTSTAMP_FILTER_PTP_V1_L4_SYNC, unix.HWTSTAMP_FILTER_PTP_V1_L4_DELAY_REQ:
		return true
	}
	return false
}
