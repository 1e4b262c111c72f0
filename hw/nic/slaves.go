package nic

import (
	"log/slog"

	"sitegm/clock/timebase"
	"sitegm/event"
)

// SlaveDevice is a PHC to slave to the disciplined one, and what named it
// (clock.slave_phcs, or the interface whose own PHC it is).
type SlaveDevice struct {
	Dev, For string
	Err      error // it could not be found
}

// SlaveDevices resolves what config.SlaveCandidates names to PHC
// devices other than the disciplined one (phc), each once: an entry of
// listed that names no PHC is returned with its error, an interface of
// ports without hardware timestamping or a PHC is no candidate.
func SlaveDevices(phc string, listed, ports []string) []SlaveDevice {
	var out []SlaveDevice
	seen := map[string]bool{phc: true}
	for _, spec := range listed {
		dev, err := PHCDevice(spec)
		if err != nil {
			out = append(out, SlaveDevice{Dev: spec, For: "clock.slave_phcs", Err: err})
		} else if !seen[dev] {
			seen[dev] = true
			out = append(out, SlaveDevice{Dev: dev, For: "clock.slave_phcs"})
		}
	}
	for _, iface := range ports {
		if ti, err := GetTSInfo(iface); err == nil && ti.Hardware() && ti.PHCIndex >= 0 && !seen[ti.PHCPath()] {
			seen[ti.PHCPath()] = true
			out = append(out, SlaveDevice{Dev: ti.PHCPath(), For: iface})
		}
	}
	return out
}

// OpenSlaves slaves every PHC SlaveDevices finds, and is not slaved yet,
// to tb's disciplined PHC (timebase.PHCSlave); the events say which, and
// which could not be (their ports then take software timestamps).
func OpenSlaves(tb *timebase.Timebase, listed, ports []string) []event.Event {
	var l event.List
	if tb.PHC() == "" {
		return nil
	}
	for _, c := range SlaveDevices(tb.PHC(), listed, ports) {
		if tb.Slave(c.Dev) != nil {
			continue
		}
		err := c.Err
		if err == nil {
			_, err = tb.AddSlave(c.Dev)
		}
		if err != nil {
			l.Emit(slog.LevelWarn, "phc_slave", "slave PHC unavailable: its ports take software timestamps",
				"phc", c.Dev, "phc_for", c.For, "phc_state", "DOWN", "error", err.Error())
			continue
		}
		l.Emit(slog.LevelInfo, "phc_slave_added", "slave PHC: kept on the disciplined clock", "phc", c.Dev, "phc_for", c.For)
	}
	return l.Take()
}
