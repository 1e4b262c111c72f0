package ptpnet

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A Sync more than two intervals after the one before is late; the
// longest gap of the last minute is kept, and a port that left MASTER
// starts its rhythm again rather than count the pause.
func TestSyncGaps(t *testing.T) {
	g := syncGaps{interval: 125 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	for i := 0; i < 8; i++ {
		g.sent(t0.Add(time.Duration(i) * 125 * time.Millisecond))
	}
	if g.late.Load() != 0 || g.maxUS.Load() != 125000 {
		t.Fatalf("steady: late %d max %d µs", g.late.Load(), g.maxUS.Load())
	}
	g.sent(t0.Add(2 * time.Second)) // 1.125 s after the last
	if g.late.Load() != 1 || g.maxUS.Load() != 1125000 {
		t.Errorf("gap: late %d max %d µs", g.late.Load(), g.maxUS.Load())
	}
	g.restart()
	g.sent(t0.Add(30 * time.Second))
	if g.late.Load() != 1 {
		t.Error("a restart counted as late")
	}
	// A window later, a steady rhythm shows only its own gaps.
	for i := 0; i < 3; i++ {
		g.sent(t0.Add(3*time.Minute + time.Duration(i)*125*time.Millisecond))
	}
	for i := 0; i < 3; i++ {
		g.sent(t0.Add(4*time.Minute + time.Duration(i)*125*time.Millisecond))
	}
	for i := 0; i < 3; i++ {
		g.sent(t0.Add(5*time.Minute + time.Duration(i)*125*time.Millisecond))
	}
	if g.maxUS.Load() > 60*1e6 {
		t.Errorf("max %d µs", g.maxUS.Load())
	}
}

func TestFull(t *testing.T) {
	for err, want := range map[error]bool{unix.EAGAIN: true, fmt.Errorf("send: %w", unix.ENOBUFS): true,
		unix.EPERM: false, ErrRefused: false, errors.New("x"): false} {
		if Full(err) != want {
			t.Errorf("%v: %v", err, !want)
		}
	}
}
