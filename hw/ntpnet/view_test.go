package ntpnet

import (
	"sync/atomic"
	"testing"

	"sitegm/ntp"
)

// Hold turns the published view's header unsynchronized (LI 3) until the
// next is published; nothing published, nothing held.
func TestHold(t *testing.T) {
	var v atomic.Pointer[View]
	Hold(&v)
	if v.Load() != nil {
		t.Fatal("held a view that was never published")
	}
	v.Store(&View{Header: ntp.Header{Leap: 0, Stratum: 1}})
	Hold(&v)
	if h := v.Load().Header; h.Leap != 3 {
		t.Errorf("held header %+v, want LI 3", h)
	}
}
