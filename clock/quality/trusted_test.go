package quality_test

import (
	"testing"
	"time"

	"sitegm/clock/quality"
	"sitegm/clock/quality/qualitytest"
)

// TestTrustedBound: what the monitors compare against is the error bound
// while the clock knows the time (LOCKED, HOLDOVER), and 0 otherwise.
func TestTrustedBound(t *testing.T) {
	for _, c := range qualitytest.Cases() {
		b := c.M.TrustedBound()
		st := c.M.State()
		known := st == quality.Locked || st == quality.Holdover
		if known && (b <= 0 || b >= time.Hour || b < min(c.M.EstError(), time.Hour)) || !known && b != 0 {
			t.Errorf("%s (%v): TrustedBound %v, EstError %v", c.Name, st, b, c.M.EstError())
		}
	}
}
