package v1

import (
	"bytes"
	"fmt"
)

// Credentials are what a v1 master advertises in its Syncs and what the
// best-master algorithm compares.
type Credentials struct {
	UUID         UUID
	Port         uint16
	Stratum      uint8
	Identifier   [4]byte
	Variance     int16
	Preferred    bool
	IsBoundary   bool
	StepsRemoved uint16
}

// FromSync takes a foreign master's credentials from its Sync.
func FromSync(s *Sync) Credentials {
	return Credentials{UUID: s.GMUUID, Port: s.GMPort, Stratum: s.GMStratum, Identifier: s.GMIdentifier,
		Variance: s.GMVariance, Preferred: s.GMPreferred, IsBoundary: s.GMIsBoundary, StepsRemoved: s.LocalStepsRemoved}
}

// Describe names a master for logs.
func (c Credentials) Describe() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x stratum %d %q variance %d preferred %v",
		c.UUID[0], c.UUID[1], c.UUID[2], c.UUID[3], c.UUID[4], c.UUID[5], c.Stratum,
		string(bytes.TrimRight(c.Identifier[:], "\x00")), c.Variance, c.Preferred)
}

// identifierOrder ranks clock identifiers (1588-2002 Table 7: ATOM and GPS
// are primary references, then NTP, HAND, INIT, DFLT, anything else).
func identifierOrder(id [4]byte) int {
	switch string(bytes.TrimRight(id[:], "\x00")) {
	case "ATOM", "GPS":
		return 1
	case "NTP":
		return 2
	case "HAND":
		return 3
	case "INIT":
		return 4
	case "DFLT":
		return 5
	}
	return 6
}

// varianceThreshold is PTP_LOG_VARIANCE_THRESHOLD: variances closer than
// this are "similar" (1588-2002 7.6.6).
const varianceThreshold = 256

// Compare runs the IEEE 1588-2002 data set comparison (7.6.4 to 7.6.6,
// the flow of its figures as implemented by ptpd 1.x; the standard's text
// itself was not at hand) between two grandmasters: negative when a is
// better. The comparison orders by stratum, then identifier, then (for
// strata 1 and 2) the preferred flag, or (beyond) variance unless similar,
// then boundary clock, then the lower UUID; and a preferred grandmaster
// beats one that is not whatever else they say. Two records of the same
// grandmaster compare by steps removed.
func Compare(a, b Credentials) int {
	if a.UUID == b.UUID && a.Port == b.Port {
		return int(a.StepsRemoved) - int(b.StepsRemoved)
	}
	r := rank(a, b)
	// The preferred override after the ranking (paths A and B of the
	// figures): a preferred master wins against one that is not.
	if a.Preferred != b.Preferred {
		if a.Preferred {
			return -1
		}
		return 1
	}
	return r
}

func rank(a, b Credentials) int {
	if a.Stratum != b.Stratum {
		return int(a.Stratum) - int(b.Stratum)
	}
	if oa, ob := identifierOrder(a.Identifier), identifierOrder(b.Identifier); oa != ob {
		return oa - ob
	}
	if a.Stratum > 2 {
		if d := int(a.Variance) - int(b.Variance); d > varianceThreshold || d < -varianceThreshold {
			return d
		}
		if a.IsBoundary != b.IsBoundary {
			if a.IsBoundary {
				return -1
			}
			return 1
		}
	}
	if c := bytes.Compare(a.UUID[:], b.UUID[:]); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}
