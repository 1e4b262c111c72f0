package clock

import (
	"sync"
	"testing"
	"time"
)

// fakeHost is a host clock the test moves by hand.
type fakeHost struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeHost) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeHost) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestVirtualFrequencyAndStep(t *testing.T) {
	h := &fakeHost{t: time.Unix(1_700_000_000, 0)}
	v := NewVirtualOver(h.now, 37*time.Second)
	if got := v.NowTime(); !got.Equal(h.now().Add(37 * time.Second)) {
		t.Fatalf("start %v", got)
	}
	v.SetFrequency(1000) // +1 ppm
	h.add(10 * time.Second)
	want := time.Unix(1_700_000_000+37+10, 10_000) // 10 s * 1 ppm = 10 us
	if got := v.NowTime(); !got.Equal(want) {
		t.Errorf("after 10 s at +1 ppm: %v, want %v", got, want)
	}
	v.Step(-2 * time.Millisecond)
	if got := v.NowTime(); !got.Equal(want.Add(-2 * time.Millisecond)) {
		t.Errorf("after step: %v", got)
	}
	if f, _ := v.Frequency(); f != 1000 {
		t.Errorf("frequency %v", f)
	}
	// ToHost inverts FromHost.
	now := v.NowTime()
	if back := v.ToHost(now); back.Sub(h.now()).Abs() > time.Nanosecond {
		t.Errorf("ToHost %v, host %v", back, h.now())
	}
	v.SetFrequency(1e9)
	if f, _ := v.Frequency(); f != VirtualMaxPPB {
		t.Errorf("not clamped: %v", f)
	}
}

// A kernel timestamp taken before an adjustment maps through the segment
// in force when it was taken.
func TestVirtualMapsOldStampsExactly(t *testing.T) {
	h := &fakeHost{t: time.Unix(1_700_000_000, 0)}
	v := NewVirtualOver(h.now, 0)
	v.SetFrequency(50_000) // +50 ppm
	h.add(time.Second)
	stamp := h.now()
	before := v.FromHost(stamp)
	h.add(500 * time.Millisecond)
	v.SetFrequency(-50_000)
	v.Step(time.Second)
	h.add(500 * time.Millisecond)
	if after := v.FromHost(stamp); !after.Equal(before) {
		t.Errorf("old stamp moved: %v then %v", before, after)
	}
	// Many adjustments later the history is bounded but recent stamps
	// still map exactly.
	for i := 0; i < 3*virtualHistory; i++ {
		h.add(10 * time.Millisecond)
		v.SetFrequency(float64(i))
	}
	recent := h.now().Add(-15 * time.Millisecond)
	want := v.FromHost(recent)
	h.add(time.Millisecond)
	v.SetFrequency(12345)
	if got := v.FromHost(recent); !got.Equal(want) {
		t.Errorf("recent stamp moved")
	}
}

func TestVirtualConcurrentReaders(t *testing.T) {
	v := NewVirtual(0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := v.NowTime()
			for {
				select {
				case <-stop:
					return
				default:
				}
				now := v.NowTime()
				// Slews are small against the loop: time never runs
				// backwards for a reader.
				if now.Before(prev.Add(-time.Microsecond)) {
					t.Errorf("went back %v", prev.Sub(now))
					return
				}
				prev = now
			}
		}()
	}
	for i := 0; i < 1000; i++ {
		v.SetFrequency(float64(i % 100))
	}
	close(stop)
	wg.Wait()
}
