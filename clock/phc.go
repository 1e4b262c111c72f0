package clock

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PHC is a NIC's PTP hardware clock, /dev/ptpN. It counts TAI.
type PHC struct {
	f      *os.File
	k      kernelClock
	maxAdj float64
	// Method is how SysOffset measures against CLOCK_REALTIME: "precise"
	// (a hardware cross-timestamp), "extended" (best of several reads
	// bracketed by system reads), or "basic".
	Method string
}

// OpenPHC opens a PHC device.
func OpenPHC(path string) (*PHC, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	p := &PHC{f: f, k: kernelClock{id: unix.FdToClockID(int(f.Fd()))}, maxAdj: 500000}
	if caps, err := unix.IoctlPtpClockGetcaps(int(f.Fd())); err == nil && caps.Max_adj > 0 {
		p.maxAdj = float64(caps.Max_adj)
	}
	p.Method = p.probeMethod()
	return p, nil
}

// Close releases the device.
func (p *PHC) Close() error { return p.f.Close() }

// Fd is the device descriptor (EXTTS events are read from it).
func (p *PHC) Fd() int { return int(p.f.Fd()) }

// File is the device.
func (p *PHC) File() *os.File { return p.f }

// Name implements Clock.
func (p *PHC) Name() string { return p.f.Name() }

// Timescale implements Clock.
func (p *PHC) Timescale() Timescale { return TAI }

// Now implements Clock.
func (p *PHC) Now() (time.Time, error) { return p.k.now() }

// Frequency implements Clock.
func (p *PHC) Frequency() (float64, error) { return p.k.frequency() }

// SetFrequency implements Clock.
func (p *PHC) SetFrequency(ppb float64) error { return p.k.setFrequency(ppb) }

// Step implements Clock.
func (p *PHC) Step(d time.Duration) error { return p.k.step(d) }

// MaxFrequency implements Clock: the driver's max_adj (i210: 62499999
// scaled... reported in ppb by PTP_CLOCK_GETCAPS).
func (p *PHC) MaxFrequency() float64 { return p.maxAdj }

// The first-generation ioctl numbers, for kernels older than the "2"
// variants golang.org/x/sys uses (linux/ptp_clock.h: _IOWR('=', 8, struct
// ptp_sys_offset_precise) etc.).
const (
	ptpSysOffsetPreciseV1  = 0xc0403d08
	ptpSysOffsetExtendedV1 = 0xc4c03d09
	ptpSysOffsetV1         = 0x43403d05
)

// SysOffset is one comparison of the PHC with CLOCK_REALTIME.
type SysOffset struct {
	PHC, System time.Time     // the same instant on both clocks
	Window      time.Duration // uncertainty of the pairing (0 for precise)
}

func ptpTime(t unix.PtpClockTime) time.Time { return time.Unix(t.Sec, int64(t.Nsec)) }

// Ioctl makes ioctl(2) request req on fd with a pointer argument: the
// PHC's and the PPS device's requests that x/sys/unix has no wrapper for
// (the PTP_SYS_OFFSET first generation, PPS_GETCAP/SETPARAMS/FETCH).
func Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// probeMethod picks the best measurement the driver supports:
// PTP_SYS_OFFSET_PRECISE (a cross-timestamp, i225/i226 with PCIe PTM, not
// i210), then _EXTENDED, then the basic PTP_SYS_OFFSET.
func (p *PHC) probeMethod() string {
	for _, m := range []string{"precise", "extended", "basic"} {
		if _, err := p.sysOffset(m); err == nil {
			return m
		}
	}
	return "basic"
}

// SysOffset measures the PHC against CLOCK_REALTIME with the best method.
func (p *PHC) SysOffset() (SysOffset, error) { return p.sysOffset(p.Method) }

const sysOffSamples = 9

func (p *PHC) sysOffset(method string) (SysOffset, error) {
	fd := p.Fd()
	switch method {
	case "precise":
		var v unix.PtpSysOffsetPrecise
		err := Ioctl(fd, unix.PTP_SYS_OFFSET_PRECISE2, unsafe.Pointer(&v))
		if errors.Is(err, unix.ENOTTY) {
			err = Ioctl(fd, ptpSysOffsetPreciseV1, unsafe.Pointer(&v))
		}
		if err != nil {
			return SysOffset{}, err
		}
		return SysOffset{PHC: ptpTime(v.Device), System: ptpTime(v.Realtime)}, nil
	case "extended":
		v := unix.PtpSysOffsetExtended{Samples: sysOffSamples}
		err := Ioctl(fd, unix.PTP_SYS_OFFSET_EXTENDED2, unsafe.Pointer(&v))
		if errors.Is(err, unix.ENOTTY) {
			err = Ioctl(fd, ptpSysOffsetExtendedV1, unsafe.Pointer(&v))
		}
		if err != nil {
			return SysOffset{}, err
		}
		return BestExtended(&v), nil
	case "basic":
		v := unix.PtpSysOffset{Samples: sysOffSamples}
		if err := Ioctl(fd, ptpSysOffsetV1, unsafe.Pointer(&v)); err != nil {
			return SysOffset{}, err
		}
		return BestBasic(&v), nil
	}
	return SysOffset{}, fmt.Errorf("unknown method %q", method)
}

// BestExtended picks the sample with the narrowest system-time bracket
// (PTP_SYS_OFFSET_EXTENDED: ts[i] = {sys before, phc, sys after}) and pairs
// the PHC reading with the bracket's middle.
func BestExtended(v *unix.PtpSysOffsetExtended) SysOffset {
	best := SysOffset{Window: time.Duration(1<<63 - 1)}
	for i := 0; i < int(v.Samples) && i < len(v.Ts); i++ {
		before, phc, after := ptpTime(v.Ts[i][0]), ptpTime(v.Ts[i][1]), ptpTime(v.Ts[i][2])
		if w := after.Sub(before); w >= 0 && w < best.Window {
			best = SysOffset{PHC: phc, System: before.Add(w / 2), Window: w}
		}
	}
	return best
}

// BestBasic does the same for PTP_SYS_OFFSET, whose ts[] alternates system,
// PHC, system, ... (2n+1 readings).
func BestBasic(v *unix.PtpSysOffset) SysOffset {
	best := SysOffset{Window: time.Duration(1<<63 - 1)}
	for i := 0; i < int(v.Samples) && 2*i+2 < len(v.Ts); i++ {
		before, phc, after := ptpTime(v.Ts[2*i]), ptpTime(v.Ts[2*i+1]), ptpTime(v.Ts[2*i+2])
		if w := after.Sub(before); w >= 0 && w < best.Window {
			best = SysOffset{PHC: phc, System: before.Add(w / 2), Window: w}
		}
	}
	return best
}
