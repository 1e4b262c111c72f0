package commission

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"sitegm/internal/config"
)

// The error budget: how far from UTC the time each service hands out may
// be, term by term, against what the site needs of it. Terms are bounds
// of independent errors, so they add as a root sum of squares; each says
// whether it was measured here, read from the configuration or assumed.

// What the site needs (the mission: audio within microseconds, video
// within milliseconds, both from one clock):
const (
	// PTP: AES67 devices follow the grandmaster to a microsecond or
	// better, 1/20 of a sample at 48 kHz; a grandmaster whose own time is
	// within 1 us of UTC keeps the audio's timestamps true to the video's.
	needPTP = 1000.0
	// NTP: Milestone stamps video by the recorder's clock; frames are 33 ms
	// apart at 30 fps, and a millisecond is far inside one.
	needNTP = 1e6
)

// Assumed terms, each with its basis.
const (
	// A receiver that gives no estimate of its own: a timing receiver's
	// pulse against UTC (the GNSS's own UTC realisation and the receiver's
	// calibration) is tens of ns.
	assumedReceiver = 50.0
	// No cable delay entered: 30 m of RG-58 at 5.05 ns/m, unless the
	// receiver compensates it.
	assumedCable = 150.0
	// An entered delay's own uncertainty: the velocity factor on a
	// datasheet and a measured length are good to a few percent.
	delayTolerance = 0.05
	// Hardware timestamps: an i210 stamps in steps of 8 ns; the PHY adds
	// a few ns of variation the driver's fixed latency does not cover.
	hwStamp = 10.0
	// Software (kernel) timestamps: interrupt and stack latency, tens of
	// microseconds on a quiet box.
	swStamp = 50000.0
)

// Term is one line of a budget.
type Term struct {
	Name  string  `json:"name"`
	NS    float64 `json:"ns"`
	Basis string  `json:"basis"` // measured, configured, assumed: and from what
}

// Budget is one service's error budget.
type Budget struct {
	Service string  `json:"service"` // PTP, NTP
	Terms   []Term  `json:"terms"`
	TotalNS float64 `json:"total_ns"`
	NeedNS  float64 `json:"need_ns"`
	Need    string  `json:"need"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	Action  string  `json:"action,omitempty"`
}

func (b Budget) figure() string {
	return fmt.Sprintf("%s of %s", ns(b.TotalNS), ns(b.NeedNS))
}

func budgets(cfg *config.Config, obs *Observations, r *Report) []Budget {
	out := []Budget{}
	if cfg.GNSS.Device == "" {
		return out // the upstreams are the reference: sitegm status shows their root distance
	}
	common := referenceTerms(cfg, obs, r)
	if len(cfg.PTP) > 0 {
		t := append([]Term{}, common...)
		if p := r.PHC; p != nil && cfg.GNSS.PPS.Kind != "phc" && cfg.Clock.Discipline == "phc" {
			t = append(t, Term{"pulse carried onto the PHC", p.WindowMedianNS / 2,
				"measured: half the median PHC read window (the pulse is stamped on the system clock)"})
		}
		hw := true
		for _, ifc := range obs.Interfaces {
			if slices.Contains(ifc.Roles, "ptp") && !ifc.HWCapable {
				hw = false
			}
		}
		if hw {
			t = append(t, Term{"NIC timestamps", hwStamp, "assumed: hardware timestamps (8 ns steps, PHY variation)"})
		} else {
			t = append(t, Term{"NIC timestamps", swStamp, "assumed: software timestamps on an interface without hardware ones"})
		}
		out = append(out, total("PTP", t, needPTP, "AES67 audio: 1 us"))
	}
	if len(cfg.NTP) > 0 {
		t := append([]Term{}, common...)
		if p := r.PHC; p != nil && cfg.Clock.Discipline == "phc" {
			t = append(t, Term{"PHC read for each NTP timestamp", p.WindowMedianNS / 2,
				"measured: half the median PHC read window"})
		}
		t = append(t, Term{"NTP timestamps", swStamp, "assumed: kernel software timestamps"})
		out = append(out, total("NTP", t, needNTP, "video (Milestone, cameras): 1 ms"))
	}
	return out
}

// referenceTerms are the terms both services share: the receiver, the
// delays, the pulse and the clock's following of it.
func referenceTerms(cfg *config.Config, obs *Observations, r *Report) []Term {
	var t []Term
	if acc := obs.Receiver.TimeAccNS; acc > 0 {
		t = append(t, Term{"receiver", float64(acc), "measured: the receiver's own time accuracy estimate"})
	} else {
		t = append(t, Term{"receiver", assumedReceiver, "assumed: the receiver gives no estimate of its own"})
	}
	if cfg.GNSS.PPS.Kind == "none" {
		t = append(t, Term{"NMEA timing", float64(cfg.GNSS.NMEADelay.Duration) + 20e6, "assumed: without a pulse, the sentences' latency varies by tens of ms"})
		return t
	}
	cable := float64(cfg.GNSS.CableDelay.Abs())
	if cable == 0 {
		t = append(t, Term{"antenna cable", assumedCable, "assumed: no cable delay entered (30 m of RG-58)"})
	} else {
		t = append(t, Term{"antenna cable", cable * delayTolerance, fmt.Sprintf("configured %s, good to %.0f%%", cfg.GNSS.CableDelay.Duration, 100*delayTolerance)})
	}
	if off := float64(cfg.GNSS.PPSOffset.Abs()); off != 0 {
		t = append(t, Term{"pulse offset", off * delayTolerance, fmt.Sprintf("configured %s, good to %.0f%%", cfg.GNSS.PPSOffset.Duration, 100*delayTolerance)})
	}
	p := r.PPS
	switch {
	case p.Offset != nil && p.Offset.N >= 10:
		t = append(t, Term{"clock from the pulse", p.Offset.AbsP99, fmt.Sprintf("measured: 99%% of %d pulses within", p.Offset.N)})
	case p.Residual.N >= 10:
		t = append(t, Term{"pulse jitter", p.Residual.AbsP99, fmt.Sprintf("measured: 99%% of %d pulses within (standalone: the servo averages this down)", p.Residual.N)})
	default:
		t = append(t, Term{"pulse", 1000, "assumed: too few pulses measured"})
	}
	return t
}

func total(service string, terms []Term, need float64, what string) Budget {
	var ss float64
	for _, t := range terms {
		ss += t.NS * t.NS
	}
	b := Budget{Service: service, Terms: terms, TotalNS: math.Sqrt(ss), NeedNS: need, Need: what}
	biggest := terms[0]
	for _, t := range terms {
		if t.NS > biggest.NS {
			biggest = t
		}
	}
	switch {
	case b.TotalNS <= need/2:
		b.Verdict, b.Reason = Pass, fmt.Sprintf("within half of what %s needs", service)
	case b.TotalNS <= need:
		b.Verdict, b.Reason = Warn, fmt.Sprintf("within what %s needs, with less than half to spare; the largest term is %s", service, biggest.Name)
		b.Action = "reduce " + biggest.Name + advice(biggest)
	default:
		b.Verdict, b.Reason = Fail, fmt.Sprintf("beyond what %s needs; the largest term is %s", service, biggest.Name)
		b.Action = "reduce " + biggest.Name + advice(biggest)
	}
	return b
}

func advice(t Term) string {
	switch {
	case strings.HasPrefix(t.Name, "antenna cable"):
		return ": enter gnss.cable_delay"
	case strings.HasPrefix(t.Name, "NIC"):
		return ": serve PTP from a NIC with hardware timestamps"
	case strings.Contains(t.Name, "pulse"):
		return ": stamp the pulse on the NIC's pin"
	}
	return ""
}
