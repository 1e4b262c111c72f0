package ptp

import (
	"fmt"

	"github.com/facebook/time/ptp/protocol"
)

// Dataset is what the best master clock algorithm compares (IEEE
// 1588-2019 9.3.4, the data set comparison algorithm): a grandmaster's
// identity and quality as an Announce carries it, plus the topology.
type Dataset struct {
	Priority1     uint8
	Quality       protocol.ClockQuality
	Priority2     uint8
	GMIdentity    protocol.ClockIdentity
	StepsRemoved  uint16
	Sender        protocol.PortIdentity // the port that sent the Announce (ours for D0)
	ReceiverPort  protocol.PortIdentity // the port that received it
	IsLocalClock  bool
	TimeSource    protocol.TimeSource
	UTCOffset     int16
	Flags         uint16 // time properties flags of the Announce
	LogAnnounce   protocol.LogInterval
	AnnounceCount int
}

// FromAnnounce builds the dataset an Announce describes.
func FromAnnounce(a *protocol.Announce, receiver protocol.PortIdentity) Dataset {
	return Dataset{
		Priority1: a.GrandmasterPriority1, Quality: a.GrandmasterClockQuality, Priority2: a.GrandmasterPriority2,
		GMIdentity: a.GrandmasterIdentity, StepsRemoved: a.StepsRemoved, Sender: a.SourcePortIdentity,
		ReceiverPort: receiver, TimeSource: a.TimeSource, UTCOffset: a.CurrentUTCOffset,
		Flags: a.FlagField, LogAnnounce: a.LogMessageInterval,
	}
}

// Compare returns a negative number when a is better than b, positive
// when b is better, zero when they are the same. It follows Figures 33
// and 34 of IEEE 1588-2019 (Figures 27 and 28 of 1588-2008): first the
// grandmasters (priority1, clockClass, clockAccuracy,
// offsetScaledLogVariance, priority2, identity: lower wins), and for the
// same grandmaster the topology (fewer steps, then the sender's and the
// receiver's port identities).
func Compare(a, b Dataset) int {
	if a.GMIdentity != b.GMIdentity {
		switch {
		case a.Priority1 != b.Priority1:
			return cmp(int(a.Priority1), int(b.Priority1))
		case a.Quality.ClockClass != b.Quality.ClockClass:
			return cmp(int(a.Quality.ClockClass), int(b.Quality.ClockClass))
		case a.Quality.ClockAccuracy != b.Quality.ClockAccuracy:
			return cmp(int(a.Quality.ClockAccuracy), int(b.Quality.ClockAccuracy))
		case a.Quality.OffsetScaledLogVariance != b.Quality.OffsetScaledLogVariance:
			return cmp(int(a.Quality.OffsetScaledLogVariance), int(b.Quality.OffsetScaledLogVariance))
		case a.Priority2 != b.Priority2:
			return cmp(int(a.Priority2), int(b.Priority2))
		}
		if a.GMIdentity < b.GMIdentity {
			return -1
		}
		return 1
	}
	// Same grandmaster: the shorter path wins; a difference of one step is
	// decided by who is the receiver of whose Announce (Figure 34).
	d := int(a.StepsRemoved) - int(b.StepsRemoved)
	if d > 1 || d < -1 {
		return cmp(int(a.StepsRemoved), int(b.StepsRemoved))
	}
	if d == 1 && a.ReceiverPort == b.Sender {
		return 2 // b is better, a came through b
	}
	if d == -1 && b.ReceiverPort == a.Sender {
		return -2
	}
	if d != 0 {
		return d
	}
	if c := a.Sender.Compare(b.Sender); c != 0 {
		return c
	}
	return a.ReceiverPort.Compare(b.ReceiverPort)
}

// Locked says whether a clockClass is that of a grandmaster synchronized
// to its reference (IEEE 1588-2019 7.6.2.5, Table 4: 6 on the PTP
// timescale, 13 on an ARB one). Holdover (7, 14) and every degraded or
// default class are not.
func Locked(c protocol.ClockClass) bool { return c == 6 || c == 13 }

// CompareLockedFirst is Compare after one rule: of two grandmasters of
// which exactly one is Locked, that one is better, whatever the
// priorities say. It is still a total order (the locked bit, then
// Compare), so the foreign table can keep its best by it.
//
// Why: priority1 comes before clockClass in 1588's comparison (Figure
// 33), so a primary with the better priority1 that returns after a power
// cut takes every follower from a locked backup while it is itself still
// acquiring, and one whose antenna is cut keeps them through holdover.
// 1588-2019 9.3.1 lets a PTP instance use an alternate BMCA; the
// telecom profiles' (ITU-T G.8275.1/.2) go further and ignore priority1.
// This one only orders locked before not locked and keeps the
// standard's order otherwise, so a site's priorities still pick between
// two locked boxes. Followers run the standard BMCA: a sitegm that yields
// goes PASSIVE and stops announcing, and they follow the one still
// announcing once the other's Announces time out.
func CompareLockedFirst(a, b Dataset) int {
	if la, lb := Locked(a.Quality.ClockClass), Locked(b.Quality.ClockClass); la != lb {
		if la {
			return -1
		}
		return 1
	}
	return Compare(a, b)
}

// compare is the port's comparison of datasets.
func (c Config) compare() func(a, b Dataset) int {
	if c.LockedFirst {
		return CompareLockedFirst
	}
	return Compare
}

func cmp(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Describe names a grandmaster for a log line.
func (d Dataset) Describe() string {
	return fmt.Sprintf("%s (priority1 %d, clockClass %d, accuracy %#x, variance %#x, priority2 %d) via %s",
		d.GMIdentity, d.Priority1, d.Quality.ClockClass, d.Quality.ClockAccuracy,
		d.Quality.OffsetScaledLogVariance, d.Priority2, d.Sender)
}
