package clock

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioc is the kernel's _IOC(dir, type, nr, size) (include/uapi/asm-generic/
// ioctl.h): dir in bits 30-31 (1 write, 2 read), size 16-29, type 8-15,
// nr 0-7.
func ioc(dir, typ, nr, size uintptr) uintptr { return dir<<30 | size<<16 | typ<<8 | nr }

const (
	iocW  = 1
	iocR  = 2
	iocWR = 3
)

// The structures and ioctl numbers sitegm uses against devices this
// machine does not have, checked against the kernel's layouts
// (linux/ptp_clock.h, linux/pps.h, linux/timex.h on x86-64).
func TestKernelABI(t *testing.T) {
	sizes := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"ptp_clock_time", unsafe.Sizeof(unix.PtpClockTime{}), 16},
		{"ptp_sys_offset_precise", unsafe.Sizeof(unix.PtpSysOffsetPrecise{}), 64},
		{"ptp_sys_offset_extended", unsafe.Sizeof(unix.PtpSysOffsetExtended{}), 16 + 25*3*16},
		{"ptp_sys_offset", unsafe.Sizeof(unix.PtpSysOffset{}), 16 + 51*16},
		{"ptp_extts_request", unsafe.Sizeof(unix.PtpExttsRequest{}), 16},
		{"ptp_extts_event", unsafe.Sizeof(unix.PtpExttsEvent{}), 32},
		{"ptp_pin_desc", unsafe.Sizeof(unix.PtpPinDesc{}), 96},
		{"ptp_clock_caps", unsafe.Sizeof(unix.PtpClockCaps{}), 80},
		{"pps_fdata", unsafe.Sizeof(unix.PPSFData{}), 64},
		{"pps_kparams", unsafe.Sizeof(unix.PPSKParams{}), 40},
		{"timex", unsafe.Sizeof(unix.Timex{}), 208},
	}
	for _, s := range sizes {
		if s.got != s.want {
			t.Errorf("sizeof(%s) = %d, kernel has %d", s.name, s.got, s.want)
		}
	}
	const ptp = '='
	nums := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"PTP_SYS_OFFSET_PRECISE", ptpSysOffsetPreciseV1, ioc(iocWR, ptp, 8, 64)},
		{"PTP_SYS_OFFSET_PRECISE2", unix.PTP_SYS_OFFSET_PRECISE2, ioc(iocWR, ptp, 17, 64)},
		{"PTP_SYS_OFFSET_EXTENDED", ptpSysOffsetExtendedV1, ioc(iocWR, ptp, 9, 1216)},
		{"PTP_SYS_OFFSET_EXTENDED2", unix.PTP_SYS_OFFSET_EXTENDED2, ioc(iocWR, ptp, 18, 1216)},
		{"PTP_SYS_OFFSET", ptpSysOffsetV1, ioc(iocW, ptp, 5, 832)},
		{"PTP_EXTTS_REQUEST2", unix.PTP_EXTTS_REQUEST2, ioc(iocW, ptp, 11, 16)},
		{"PTP_PIN_SETFUNC2", unix.PTP_PIN_SETFUNC2, ioc(iocW, ptp, 16, 96)},
		{"PTP_CLOCK_GETCAPS2", unix.PTP_CLOCK_GETCAPS2, ioc(iocR, ptp, 10, 80)},
		{"PPS_FETCH", unix.PPS_FETCH, ioc(iocWR, 'p', 0xa4, 8)}, // the argument is a pointer
		{"PPS_SETPARAMS", unix.PPS_SETPARAMS, ioc(iocW, 'p', 0xa2, 8)},
	}
	for _, n := range nums {
		if n.got != n.want {
			t.Errorf("%s = %#x, _IOC gives %#x", n.name, n.got, n.want)
		}
	}
}

func TestTimexArithmetic(t *testing.T) {
	if f := ppbToTimexFreq(1000); f != 65536 {
		t.Errorf("1 ppm = %d, want 65536", f)
	}
	if p := timexFreqToPPB(ppbToTimexFreq(-12345.6)); p < -12345.62 || p > -12345.58 {
		t.Errorf("round trip %v", p)
	}
	tx := stepTimex(-1500 * time.Millisecond)
	if tx.Time.Sec != -2 || tx.Time.Usec != 500_000_000 || tx.Modes != unix.ADJ_SETOFFSET|unix.ADJ_NANO {
		t.Errorf("step -1.5 s: %+v", tx.Time)
	}
	tx = stepTimex(2*time.Second + 3)
	if tx.Time.Sec != 2 || tx.Time.Usec != 3 {
		t.Errorf("step 2 s 3 ns: %+v", tx.Time)
	}
	if st := leapStatus(unix.STA_DEL|unix.STA_UNSYNC, 1); st != unix.STA_INS|unix.STA_UNSYNC {
		t.Errorf("insert: %#x", st)
	}
	if st := leapStatus(unix.STA_INS, 0); st != 0 {
		t.Errorf("clear: %#x", st)
	}
}

// A look at the kernel: the TAI offset as it is; a maxerror at the
// kernel's limit is a reset (ntp_clear), one below it (the mark, grown by
// at most 500 us a second between looks) is not.
func TestKernelLeapLook(t *testing.T) {
	for _, c := range []struct {
		maxerr int64
		forgot bool
	}{{syncCapUS, false}, {leapMarkUS, false}, {leapMarkUS + 500*3600, false}, {ntpPhaseLimitUS, true}} {
		tx := unix.Timex{Maxerror: c.maxerr, Tai: 37}
		if k := kernelLeap(&tx); k.Forgot != c.forgot || k.TAI != 37 || k.Flag != 0 {
			t.Errorf("maxerror %d: %+v", c.maxerr, k)
		}
	}
	for st, flag := range map[int32]int{unix.STA_INS | unix.STA_UNSYNC: 1, unix.STA_DEL: -1, unix.STA_PLL: 0} {
		if k := kernelLeap(&unix.Timex{Status: st}); k.Flag != flag {
			t.Errorf("status %#x: flag %d, want %d", st, k.Flag, flag)
		}
	}
}

// The leap watch's mark pulls a maxerror past it down to it, so that the
// next reset shows, and leaves every smaller one (the sync status's bound,
// the unsynchronized cap) as it is; it lies between the cap and the
// kernel's limit.
func TestLeapMark(t *testing.T) {
	if !(syncCapUS < leapMarkUS && leapMarkUS < ntpPhaseLimitUS) {
		t.Fatalf("cap %d, mark %d, limit %d", syncCapUS, leapMarkUS, ntpPhaseLimitUS)
	}
	for _, c := range []struct {
		maxerr int64
		write  bool
	}{{1, false}, {syncCapUS + 500*3600, false}, {leapMarkUS, false}, {leapMarkUS + 1, true}, {ntpPhaseLimitUS, true}} {
		w := unix.Timex{Modes: unix.ADJ_STATUS}
		markTimex(&w, c.maxerr)
		if got := w.Modes&unix.ADJ_MAXERROR != 0; got != c.write || (got && w.Maxerror != leapMarkUS) {
			t.Errorf("maxerror %d: modes %#x maxerror %d", c.maxerr, w.Modes, w.Maxerror)
		}
		if w.Modes&unix.ADJ_STATUS == 0 {
			t.Errorf("maxerror %d: the write's own modes lost", c.maxerr)
		}
	}
}

// The sync status is not written over a reset the leap watch has yet to
// see (a leap armed, maxerror at the limit); otherwise it is.
func TestSyncWaitsForTheLeapWatch(t *testing.T) {
	for _, c := range []struct {
		status int32
		maxerr int64
		hides  bool
	}{{unix.STA_INS, ntpPhaseLimitUS, true}, {unix.STA_DEL | unix.STA_UNSYNC, ntpPhaseLimitUS, true},
		{unix.STA_UNSYNC, ntpPhaseLimitUS, false}, {unix.STA_INS, leapMarkUS, false}, {unix.STA_INS, 2, false}} {
		if got := hidesReset(&unix.Timex{Status: c.status, Maxerror: c.maxerr}); got != c.hides {
			t.Errorf("status %#x maxerror %d: %v", c.status, c.maxerr, got)
		}
	}
}

// A write that would hide a reset waits, three times in a row at most
// (a flag armed by another program, which no watch of sitegm's pulls
// down from the limit, must not stop the status), and counts afresh
// after a write.
func TestSyncGate(t *testing.T) {
	var g syncGate
	for i, c := range []struct{ hides, write bool }{{false, true}, {true, false}, {true, false}, {true, false}, {true, true},
		{true, false}, {false, true}, {true, false}} {
		if got := g.write(c.hides); got != c.write {
			t.Errorf("write %d (hides %v): %v", i, c.hides, got)
		}
	}
}

// What the kernel is told of the clock's synchronization: STA_UNSYNC
// cleared only while synchronized with a bound under the cap, the leap
// flag and every other bit kept; bounds in us rounded up, never below
// the truth; the unsynchronized write, and a bound past the cap, far
// below the limit the leap watch reads as a reset.
func TestSyncTimex(t *testing.T) {
	const modes = unix.ADJ_STATUS | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR
	for _, c := range []struct {
		name        string
		cur         int32
		s           KernelSync
		status      int32
		maxerr, est int64
	}{
		{"locked", unix.STA_UNSYNC | unix.STA_INS, KernelSync{Synced: true, MaxError: 1500, EstError: 300}, unix.STA_INS, 2, 1},
		{"to the us", unix.STA_UNSYNC, KernelSync{Synced: true, MaxError: 2 * time.Microsecond}, 0, 2, 0},
		{"not synchronized", unix.STA_DEL, KernelSync{}, unix.STA_DEL | unix.STA_UNSYNC, syncCapUS, syncCapUS},
		{"bound past the cap", 0, KernelSync{Synced: true, MaxError: time.Hour, EstError: time.Second}, unix.STA_UNSYNC, syncCapUS, syncCapUS},
		{"negative", unix.STA_UNSYNC, KernelSync{Synced: true, MaxError: -5, EstError: -5}, 0, 0, 0},
	} {
		tx := syncTimex(c.cur, c.s)
		if tx.Modes != modes || tx.Status != c.status || tx.Maxerror != c.maxerr || tx.Esterror != c.est {
			t.Errorf("%s: modes %#x status %#x maxerror %d esterror %d, want status %#x %d %d",
				c.name, tx.Modes, tx.Status, tx.Maxerror, tx.Esterror, c.status, c.maxerr, c.est)
		}
		if k := kernelLeap(&tx); k.Forgot {
			t.Errorf("%s: the leap watch would read this write as a reset", c.name)
		}
	}
	// The kernel grows maxerror by 500 us a second: from the cap it takes
	// hours to reach the limit (and STA_UNSYNC) without a write.
	if h := time.Duration(ntpPhaseLimitUS-syncCapUS) * time.Second / 500; h < 4*time.Hour {
		t.Errorf("cap to limit in %v", h)
	}
}

// A write that keeps failing is said once (ReportSync runs each second).
// The clock id is one no kernel has: the read before the write fails,
// nothing is written anywhere.
func TestReportSyncFailureOnce(t *testing.T) {
	s := &System{k: kernelClock{id: 1 << 20}}
	if err := s.ReportSync(KernelSync{Synced: true}); err == nil {
		t.Fatal("no error from a clock that does not exist")
	}
	for i := 0; i < 3; i++ {
		if err := s.ReportSync(KernelSync{Synced: true}); err != nil {
			t.Errorf("said again: %v", err)
		}
	}
}

// Reading CLOCK_REALTIME's frequency is read-only (modes 0) and safe.
func TestSystemFrequencyReadOnly(t *testing.T) {
	k := kernelClock{id: unix.CLOCK_REALTIME}
	if _, err := k.frequency(); err != nil {
		t.Fatalf("clock_adjtime(CLOCK_REALTIME, modes=0): %v", err)
	}
	now, err := k.now()
	if err != nil || time.Since(now).Abs() > time.Second {
		t.Errorf("now %v %v", now, err)
	}
}

func TestBestSysOffset(t *testing.T) {
	ct := func(sec int64, ns uint32) unix.PtpClockTime { return unix.PtpClockTime{Sec: sec, Nsec: ns} }
	v := unix.PtpSysOffsetExtended{Samples: 3}
	v.Ts[0] = [3]unix.PtpClockTime{ct(100, 0), ct(137, 500), ct(100, 3000)}
	v.Ts[1] = [3]unix.PtpClockTime{ct(100, 10000), ct(137, 10600), ct(100, 11000)} // narrowest
	v.Ts[2] = [3]unix.PtpClockTime{ct(100, 20000), ct(137, 20500), ct(100, 22000)}
	b := BestExtended(&v)
	if b.Window != 1000 || !b.System.Equal(time.Unix(100, 10500)) || !b.PHC.Equal(time.Unix(137, 10600)) {
		t.Errorf("extended best %+v", b)
	}
	w := unix.PtpSysOffset{Samples: 2}
	w.Ts[0], w.Ts[1], w.Ts[2], w.Ts[3], w.Ts[4] = ct(5, 0), ct(42, 900), ct(5, 2000), ct(42, 5500), ct(5, 6000)
	bb := BestBasic(&w)
	if bb.Window != 2000 || !bb.PHC.Equal(time.Unix(42, 900)) {
		t.Errorf("basic best %+v", bb)
	}
}
