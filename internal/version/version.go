// Package version carries build information set by the Makefile.
package version

import "time"

// BuildDate is set at link time (-X sitegm/internal/version.BuildDate=YYYY-MM-DD).
var BuildDate = ""

// fallbackDate is used by `go run` and tests, which are not linked by the
// Makefile; it only needs to be no later than the real build date.
const fallbackDate = "2026-01-01"

// DateFloor is the default gnss.date_floor: the receiver cannot legitimately
// report a date before the software was built.
func DateFloor() time.Time {
	for _, s := range []string{BuildDate, fallbackDate} {
		if t, err := time.Parse("2006-01-02", s); err == nil {
			return t
		}
	}
	return time.Time{}
}
