package main

import (
	"fmt"

	"sitegm/internal/lab"
)

// extts: the pulse on the PHC's pin (EXTTS), the PHC disciplined, the
// system clock slaved to it. The PHC starts on UTC: a TAI/UTC mix-up shows
// as 37 s.
func exttsScenario(p params, r *lab.Result) {
	dev := loadModule(p)
	s := startSitegm("/tmp/extts", "phc:"+dev.phc+":0", fmt.Sprintf("discipline = \"phc\"\nphc = %q\nsync_system = true", dev.phc),
		"[[ntp]]\ninterface = \"lo\"\n")
	defer s.stop()
	st := s.waitState(120e9, "LOCKED", 6)
	e := s.measure(20)
	r.Figures["phc_minus_truth_max_ns"] = maxAbs(e.phc)
	r.Figures["sys_minus_truth_max_ns"] = maxAbs(e.sys)
	r.Figures["advertised_bound_ns"] = e.bound[len(e.bound)-1]
	r.Figures["locked_after_s"] = st.Uptime
	r.Pass = within(e.phc, e.bound) == len(e.phc)
}
