// Package commission is the judgement of `sitegm commission`, without
// I/O: what the command's collectors observed on the site box over the
// run (Observations) becomes a Report of figures, an error budget and
// checks, each PASS, WARN or FAIL with its reason and what to do; the
// report renders as one self-contained HTML page (html.go) and as JSON.
//
// The bounds each check applies are named where the check is made
// (checks.go), and the budget's terms where they are summed (budget.go):
// a site engineer reading the report can trace every verdict to a number
// and a stated reason.
package commission

import (
	"time"

	"sitegm/internal/config"
)

// Verdict is a check's outcome; the report's is its worst check's.
type Verdict string

// Verdicts, best first.
const (
	Pass Verdict = "PASS"
	Warn Verdict = "WARN"
	Fail Verdict = "FAIL"
)

func (v Verdict) rank() int {
	switch v {
	case Warn:
		return 1
	case Fail:
		return 2
	}
	return 0
}

// worse is the worse of two verdicts.
func worse(a, b Verdict) Verdict {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Check is one judged fact.
type Check struct {
	ID      string  `json:"id"`    // stable: "pps.jitter", "interface.eth0.10.link"
	Title   string  `json:"title"` // what is checked, for a person
	Verdict Verdict `json:"verdict"`
	Figure  string  `json:"figure"`           // what was measured or found
	Reason  string  `json:"reason"`           // why that verdict
	Action  string  `json:"action,omitempty"` // what to do (WARN, FAIL)
}

// Observations are what the collectors gathered over the run.
type Observations struct {
	Host    string `json:"host"`
	Version string `json:"version"`
	Config  string `json:"config"`
	// ConfigSHA256 ties the report to the file it judged.
	ConfigSHA256 string        `json:"config_sha256"`
	Start        time.Time     `json:"start"`
	Planned      time.Duration `json:"-"`
	Elapsed      time.Duration `json:"-"`
	// Daemon: a running sitegm answered its status socket, and the
	// receiver, pulse, clock and follower figures are its own; otherwise
	// the command read the receiver and the pulse itself (standalone).
	Daemon      bool   `json:"daemon"`
	DaemonState string `json:"daemon_state,omitempty"` // its summary at the end
	Receiver    ReceiverObs
	PPS         PPSObs
	PHC         *PHCObs        `json:"phc,omitempty"`
	Interfaces  []InterfaceObs `json:"interfaces"`
	Clock       *ClockObs      `json:"clock,omitempty"`
	// Lost counts, per expected follower ("iface name"), the status
	// polls that found it lost; nil when followers were not checked.
	Lost     map[string]int `json:"-"`
	LostLast []string       `json:"-"` // lost at the last poll
	Polls    int            `json:"-"` // status polls answered
	Monitors []MonitorObs   `json:"-"`
	Leap     LeapObs        `json:"-"`
	// Problems are what could not be observed, and why.
	Problems []string `json:"-"`
}

// ReceiverObs is the receiver over the run.
type ReceiverObs struct {
	Device   string `json:"device"`
	Module   string `json:"module,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Hardware string `json:"hardware,omitempty"`
	Software string `json:"software,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	// Seconds the receiver was looked at, and in how many it had a fix.
	Seconds    int `json:"seconds"`
	FixSeconds int `json:"fix_seconds"`
	MinSats    int `json:"min_sats"`
	MaxSats    int `json:"max_sats"`
	// Its own word at the end of the run ("unknown" when it said none).
	Antenna     string  `json:"antenna"`
	Jamming     string  `json:"jamming"`
	Spoofing    string  `json:"spoofing"`
	TimeAccNS   int64   `json:"time_accuracy_ns"` // 0 unknown
	Survey      *Survey `json:"survey,omitempty"`
	State       string  `json:"state"` // absent, silent, nofix, fix
	Reports     uint64  `json:"reports"`
	BadChecksum uint64  `json:"checksum_errors"`
}

// Survey is the survey-in as the receiver last reported it.
type Survey struct {
	Active       bool    `json:"active"`
	Valid        bool    `json:"valid"`
	DurationS    float64 `json:"duration_s"`
	MeanAccM     float64 `json:"mean_accuracy_m"`
	Observations uint32  `json:"observations"`
}

// Edge is one pulse: its second (Unix, on the clock's timescale) and
// where it fell: the clock's offset from the second (daemon), or the
// edge's phase on the free-running clock it was stamped on (standalone);
// QErrNS the receiver's sawtooth for it, when known.
type Edge struct {
	Second   int64   `json:"second"`
	OffsetNS float64 `json:"offset_ns"`
	QErrNS   float64 `json:"qerr_ns,omitempty"`
	HasQErr  bool    `json:"has_qerr,omitempty"`
}

// PPSObs is the pulse over the run.
type PPSObs struct {
	Source string `json:"source"` // gnss.pps
	// Clock the edges were measured on; Disciplined says the offsets are
	// from the disciplined clock's seconds (the daemon's pairing).
	Clock       string `json:"clock"`
	Disciplined bool   `json:"disciplined"`
	Edges       []Edge `json:"edges"`
	// Counted is the edges the source counted over the run, Seconds the
	// whole seconds the run lasted while the source was read.
	Counted uint64    `json:"counted"`
	Seconds int       `json:"seconds"`
	Dropped uint64    `json:"dropped"`   // edges the source dropped (unwanted polarity beyond one a second, glitches)
	Widths  []float64 `json:"widths_ns"` // the pulse's measured width, once a second when known
	// QErrs are the receiver's TIM-TP quantisation errors seen (ns), for
	// the sawtooth's figure when the edges carry none.
	QErrs []float64 `json:"qerrs_ns,omitempty"`
}

// PHCSample is one PHC - system clock reading.
type PHCSample struct {
	T        float64 `json:"t_s"`       // since the start
	OffsetNS float64 `json:"offset_ns"` // PHC minus CLOCK_REALTIME, less the TAI-UTC seconds a PHC on TAI is ahead
	WindowNS float64 `json:"window_ns"` // the system reads' bracket (0: a cross-timestamp)
}

// PHCObs is the PHC against the system clock over the run.
type PHCObs struct {
	Device   string      `json:"device"`
	Method   string      `json:"method"` // precise, extended, basic
	Samples  []PHCSample `json:"samples"`
	Failures int         `json:"failures"`
}

// InterfaceObs is one interface sitegm serves.
type InterfaceObs struct {
	Name      string   `json:"name"`
	Roles     []string `json:"roles"` // ptp, ntp
	Exists    bool     `json:"exists"`
	OperState string   `json:"operstate"`
	Carrier   bool     `json:"carrier"`
	// CarrierChanges is how often the link went down or up during the run.
	CarrierChanges int      `json:"carrier_changes"`
	SpeedMbps      int      `json:"speed_mbps"` // -1 unknown
	Duplex         string   `json:"duplex"`
	VLAN           int      `json:"vlan"` // 0 untagged
	Parent         string   `json:"parent,omitempty"`
	Addresses      []string `json:"addresses"`
	PHC            string   `json:"phc,omitempty"`
	HWCapable      bool     `json:"hw_capable"`
	SWCapable      bool     `json:"sw_capable"`
	// Applied is the NIC's hardware timestamping now (SIOCGHWTSTAMP):
	// "tx on, rx ptp-v2-event" or "off"; AppliedErr why it is unknown.
	Applied    string `json:"applied"`
	AppliedErr string `json:"applied_error,omitempty"`
	// Served is the daemon's word on its port: its state and the
	// timestamps it uses ("" without the daemon).
	PortState    string `json:"port_state,omitempty"`
	Timestamping string `json:"timestamping,omitempty"`
	V1State      string `json:"v1_state,omitempty"`
}

// ClockObs is the daemon's clock over the run.
type ClockObs struct {
	States     []string `json:"states"` // each state seen, in order
	Final      string   `json:"final"`
	Class      int      `json:"class"`
	EstErrorNS int64    `json:"est_error_ns"` // -1 unknown
	Reference  string   `json:"reference"`
	Name       string   `json:"name"`
	// LockedPolls of Polls found it LOCKED.
	LockedPolls int `json:"locked_polls"`
	// SystemErrNS is the system clock's error bound when slaved
	// (sync_system), -1 when not.
	SystemErrNS int64 `json:"system_est_error_ns"`
}

// MonitorObs is one monitored host ([[monitor]]).
type MonitorObs struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Polls    uint64 `json:"polls"`
	Answers  uint64 `json:"answers"`
	OffsetNS int64  `json:"offset_ns"`
	WarnNS   int64  `json:"warn_ns"`
	// Compared: the offset is against a clock that knew the time (the
	// daemon's, locked or in holdover); otherwise against the box's
	// system clock as it was.
	Compared bool   `json:"compared"`
	LastErr  string `json:"last_error,omitempty"`
}

// LeapObs is the leap second table sitegm would use.
type LeapObs struct {
	Source  string    `json:"source"`
	Expires time.Time `json:"expires"` // zero: the table does not say
	Notes   []string  `json:"notes,omitempty"`
}

// Report is the judged run.
type Report struct {
	Schema  int     `json:"schema"`
	Verdict Verdict `json:"verdict"`
	Host    string  `json:"host"`
	Version string  `json:"version"`
	Config  string  `json:"config"`
	// ConfigSHA256 is the configuration file's digest.
	ConfigSHA256 string    `json:"config_sha256"`
	Start        time.Time `json:"start"`
	PlannedS     float64   `json:"planned_s"`
	ElapsedS     float64   `json:"elapsed_s"`
	Mode         string    `json:"mode"` // "daemon" or "standalone"
	Checks       []Check   `json:"checks"`

	Receiver   ReceiverObs    `json:"receiver"`
	PPS        PPSReport      `json:"pps"`
	PHC        *PHCReport     `json:"phc,omitempty"`
	Interfaces []InterfaceObs `json:"interfaces"`
	Clock      *ClockObs      `json:"clock,omitempty"`
	Delays     Delays         `json:"delays"`
	Budgets    []Budget       `json:"budgets"`
	Followers  []Follower     `json:"followers"`
	Monitors   []MonitorObs   `json:"monitors"`
	Leap       LeapObs        `json:"leap"`
	Problems   []string       `json:"problems"`
}

// Spread is a series' summary, ns.
type Spread struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean_ns"`
	Sigma  float64 `json:"sigma_ns"`
	Min    float64 `json:"min_ns"`
	Max    float64 `json:"max_ns"`
	AbsP99 float64 `json:"abs_p99_ns"`
}

// PPSReport is the pulse's figures.
type PPSReport struct {
	PPSObs
	// Expected edges (one a second) and those missing from the count.
	Expected int `json:"expected"`
	Missing  int `json:"missing"`
	// Residual is the edges about a straight line through them (the
	// pulse's jitter: what is left after the clock's phase and rate);
	// Offset the offsets themselves (daemon: the clock from the pulse).
	Residual Spread  `json:"residual"`
	Offset   *Spread `json:"offset,omitempty"`
	SlopePPB float64 `json:"slope_ppb"` // the clock's rate against the pulse over the run
	Width    *Spread `json:"width,omitempty"`
	Sawtooth *Spread `json:"sawtooth,omitempty"`
}

// PHCReport is the PHC - system comparison's figures.
type PHCReport struct {
	PHCObs
	Offset   Spread `json:"offset"`   // PHC - system (less TAI-UTC)
	Residual Spread `json:"residual"` // about a straight line
	Window   Spread `json:"window"`
	// WindowMedianNS is the typical read's bracket.
	WindowMedianNS float64 `json:"window_median_ns"`
	SlopePPB       float64 `json:"slope_ppb"`
}

// Delays are the known delays the configuration compensates.
type Delays struct {
	CableNS     int64       `json:"cable_delay_ns"`
	PPSOffsetNS int64       `json:"pps_offset_ns"`
	Ports       []PortDelay `json:"ports"`
}

// PortDelay is one PTP port's latencies.
type PortDelay struct {
	Interface string `json:"interface"`
	IngressNS int64  `json:"ingress_latency_ns"`
	EgressNS  int64  `json:"egress_latency_ns"`
}

// Follower is one expected follower's record over the run.
type Follower struct {
	Kind      string `json:"kind"` // ptp, ntp
	Interface string `json:"interface"`
	Name      string `json:"name"`
	LostPolls int    `json:"lost_polls"`
	Polls     int    `json:"polls"`
	LostAtEnd bool   `json:"lost_at_end"`
	Checked   bool   `json:"checked"`
}

// Analyze judges obs against what cfg asks for.
func Analyze(cfg *config.Config, obs *Observations) *Report {
	r := &Report{Schema: 1, Host: obs.Host, Version: obs.Version, Config: obs.Config, ConfigSHA256: obs.ConfigSHA256, Start: obs.Start,
		PlannedS: obs.Planned.Seconds(), ElapsedS: obs.Elapsed.Seconds(), Mode: "standalone",
		Receiver: obs.Receiver, Interfaces: obs.Interfaces, Clock: obs.Clock, Monitors: obs.Monitors,
		Leap: obs.Leap, Problems: obs.Problems}
	if obs.Daemon {
		r.Mode = "daemon"
	}
	if r.Problems == nil {
		r.Problems = []string{}
	}
	if r.Monitors == nil {
		r.Monitors = []MonitorObs{}
	}
	r.PPS = ppsFigures(obs.PPS)
	if obs.PHC != nil {
		r.PHC = phcFigures(*obs.PHC)
	}
	r.Delays = delaysOf(cfg)
	r.Followers = followersOf(cfg, obs)
	j := judge{cfg: cfg, obs: obs, r: r}
	j.all()
	r.Budgets = budgets(cfg, obs, r)
	for _, b := range r.Budgets {
		j.add(Check{ID: "budget." + b.Service, Title: b.Service + " error budget", Verdict: b.Verdict,
			Figure: b.figure(), Reason: b.Reason, Action: b.Action})
	}
	r.Checks = j.checks
	r.Verdict = Pass
	for _, c := range r.Checks {
		r.Verdict = worse(r.Verdict, c.Verdict)
	}
	return r
}

func delaysOf(cfg *config.Config) Delays {
	d := Delays{CableNS: cfg.GNSS.CableDelay.Nanoseconds(), PPSOffsetNS: cfg.GNSS.PPSOffset.Nanoseconds(), Ports: []PortDelay{}}
	for _, p := range cfg.PTP {
		d.Ports = append(d.Ports, PortDelay{Interface: p.Interface, IngressNS: p.IngressLatency.Nanoseconds(), EgressNS: p.EgressLatency.Nanoseconds()})
	}
	return d
}

func followersOf(cfg *config.Config, obs *Observations) []Follower {
	out := []Follower{}
	add := func(kind, iface string, names []string) {
		for _, n := range names {
			key := iface + " " + n
			f := Follower{Kind: kind, Interface: iface, Name: n, Checked: obs.Lost != nil, Polls: obs.Polls}
			if obs.Lost != nil {
				f.LostPolls = obs.Lost[key]
				for _, l := range obs.LostLast {
					f.LostAtEnd = f.LostAtEnd || l == key
				}
			}
			out = append(out, f)
		}
	}
	for _, p := range cfg.PTP {
		add("ptp", p.Interface, p.Expect)
	}
	for _, n := range cfg.NTP {
		add("ntp", n.Interface, n.Expect)
	}
	return out
}
