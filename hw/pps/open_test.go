package pps

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// Open makes the source gnss.pps names; "none" is none; a PHC that is
// not there is an error.
func TestOpen(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: "kernel", Path: "/dev/pps0", Clear: true}, "*pps.KernelSource"},
		{Spec{Kind: "sock", Path: "/run/pps.sock"}, "*pps.SockSource"},
		{Spec{Kind: "none"}, "<nil>"},
	} {
		src, err := Open(c.spec, "")
		if got := fmt.Sprintf("%T", src); err != nil || got != c.want {
			t.Errorf("%+v: %s %v", c.spec, got, err)
		}
	}
	if _, err := Open(Spec{Kind: "phc", Path: "no-such-nic"}, "/dev/ptp0"); err == nil {
		t.Error("a PHC that is not there opened")
	}
	if _, err := Open(Spec{Kind: "gps"}, ""); err == nil {
		t.Error("an unknown kind opened")
	}
}

// failing is a source that fails at once, counting its runs.
type failing struct{ runs atomic.Int32 }

func (f *failing) Name() string  { return "failing" }
func (f *failing) Stats() *Stats { return &Stats{} }
func (f *failing) Run(ctx context.Context, out chan<- Edge) error {
	f.runs.Add(1)
	return errors.New("ENODEV")
}

// Keep runs a failing source again every two seconds and says so once.
func TestKeepRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	f := &failing{}
	said := 0
	Keep(ctx, f, make(chan Edge), func(error) { said++ })
	if f.runs.Load() != 2 || said != 1 {
		t.Errorf("%d runs, %d failures said; want 2 runs, 1 said", f.runs.Load(), said)
	}
}

// The PPS monitor returns its changes as events.
func TestMonitorEvents(t *testing.T) {
	m := NewMonitor("sock:/run/pps.sock")
	t0 := time.Unix(100, 0)
	m.Edge(t0)
	m.Edge(t0.Add(time.Second))
	if evs := m.Events(); len(evs) != 1 || evs[0].Name != "pps_gained" {
		t.Fatalf("gained: %+v", evs)
	}
	m.Tick(t0.Add(3 * time.Second))
	if evs := m.Events(); len(evs) != 0 {
		t.Fatalf("lost after 2 s: %+v", evs)
	}
	m.Tick(t0.Add(5 * time.Second))
	if evs := m.Events(); len(evs) != 1 || evs[0].Name != "pps_lost" || m.OK() {
		t.Fatalf("lost: %+v", evs)
	}
}
