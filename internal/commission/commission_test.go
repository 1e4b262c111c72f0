package commission

import (
	"encoding/json"
	"html/template"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"sitegm/internal/config"
)

// site is the first site's configuration: a u-blox on a NIC pin, PTP on
// the audio VLAN with two expected Dante devices, NTP on the video VLAN,
// the recorder monitored.
func site(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("site.toml", []byte(`
[gnss]
device = "/dev/gnss0"
pps = "phc:eth0:0"
cable_delay = "152ns"
[clock]
discipline = "phc"
phc = "eth0"
sync_system = true
[[ptp]]
interface = "eth0.10"
dante_v1 = true
expect = ["192.168.10.21", "ac:de:48:00:11:22"]
[[ntp]]
interface = "eth0.20"
[[monitor]]
name = "milestone"
host = "192.168.20.10"
warn = "10ms"
`))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// goodRun is ten minutes of a site box doing everything right, in the
// daemon's words: pulses scattered by sigma ns about a clock 3 ns off.
func goodRun(sigma float64) *Observations {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	o := &Observations{Host: "sitegm-1", Version: "test", Config: "/etc/sitegm/sitegm.toml", Start: start,
		Planned: 10 * time.Minute, Elapsed: 10 * time.Minute, Daemon: true, DaemonState: "LOCKED class 6", Polls: 600,
		Lost: map[string]int{}}
	o.Receiver = ReceiverObs{Device: "/dev/gnss0", Module: "ZED-F9T", Firmware: "TIM 2.20", Hardware: "00190000", Software: "EXT CORE 1.00",
		Protocol: "29.00", Seconds: 600, FixSeconds: 600, MinSats: 18, MaxSats: 24, Antenna: "ok", Jamming: "ok", Spoofing: "none",
		TimeAccNS: 5, Survey: &Survey{Valid: true, DurationS: 300, MeanAccM: 1.2, Observations: 300}, State: "fix"}
	o.PPS = PPSObs{Source: "phc:eth0:0", Clock: "/dev/ptp0", Disciplined: true, Counted: 600, Seconds: 600}
	for i := 0; i < 600; i++ {
		q := float64(i%17)*2 - 16
		o.PPS.Edges = append(o.PPS.Edges, Edge{Second: start.Unix() + int64(i), OffsetNS: 3 + sigma*rng.NormFloat64(), QErrNS: q, HasQErr: true})
		o.PPS.Widths = append(o.PPS.Widths, 100e6+rng.NormFloat64()*10)
	}
	o.PHC = &PHCObs{Device: "/dev/ptp0", Method: "extended"}
	for i := 0; i < 600; i++ {
		o.PHC.Samples = append(o.PHC.Samples, PHCSample{T: float64(i), OffsetNS: 40 + 200*rng.NormFloat64(), WindowNS: 1500 + 100*rng.Float64()})
	}
	o.Interfaces = []InterfaceObs{
		{Name: "eth0.10", Roles: []string{"ptp"}, Exists: true, OperState: "up", Carrier: true, SpeedMbps: 1000, Duplex: "full", VLAN: 10,
			Parent: "eth0", PHC: "/dev/ptp0", HWCapable: true, SWCapable: true, Applied: "tx on, rx ptp-v2-l4-event",
			PortState: "MASTER", Timestamping: "hardware", V1State: "MASTER"},
		{Name: "eth0.20", Roles: []string{"ntp"}, Exists: true, OperState: "up", Carrier: true, SpeedMbps: 1000, Duplex: "full", VLAN: 20, Parent: "eth0"},
	}
	o.Clock = &ClockObs{States: []string{"LOCKED"}, Final: "LOCKED", Class: 6, EstErrorNS: 42, Reference: "GNSS", Name: "/dev/ptp0", LockedPolls: 600}
	o.Monitors = []MonitorObs{{Name: "milestone", Host: "192.168.20.10", Polls: 10, Answers: 10, OffsetNS: 1200000, WarnNS: 10e6, Compared: true}}
	o.Leap = LeapObs{Source: "/usr/share/zoneinfo/leap-seconds.list", Expires: start.Add(200 * 24 * time.Hour)}
	return o
}

func byID(r *Report) map[string]Check {
	m := map[string]Check{}
	for _, c := range r.Checks {
		m[c.ID] = c
	}
	return m
}

func TestGoodSitePasses(t *testing.T) {
	cfg := site(t)
	r := Analyze(cfg, goodRun(8))
	for _, c := range r.Checks {
		if c.Verdict != Pass {
			t.Errorf("%s %s: %s (%s)", c.Verdict, c.ID, c.Figure, c.Reason)
		}
	}
	if r.Verdict != Pass {
		t.Fatalf("verdict %s", r.Verdict)
	}
	if s := r.PPS.Residual.Sigma; math.Abs(s-8) > 1.5 {
		t.Errorf("jitter sigma %.1f ns, want about 8", s)
	}
	if m := r.PPS.Offset.Mean; math.Abs(m-3) > 1.5 {
		t.Errorf("mean offset %.1f ns, want about 3", m)
	}
	if w := r.PPS.Width.Mean; math.Abs(w-100e6) > 10 {
		t.Errorf("width %.0f", w)
	}
	if r.PPS.Sawtooth == nil || r.PPS.Sawtooth.Min != -16 || r.PPS.Sawtooth.Max != 16 {
		t.Errorf("sawtooth %+v", r.PPS.Sawtooth)
	}
	ids := byID(r)
	for _, id := range []string{"receiver.identity", "receiver.survey", "pps.jitter", "pps.width", "pps.sawtooth", "phc.read", "phc.system",
		"interface.eth0.10.link", "interface.eth0.10.timestamping", "interface.eth0.10.port", "interface.eth0.20.link",
		"delays.pulse", "delays.ptp.eth0.10", "follower.eth0.10.192.168.10.21", "monitor.milestone", "leap.table", "budget.PTP", "budget.NTP"} {
		if _, ok := ids[id]; !ok {
			t.Errorf("no check %s", id)
		}
	}
	if len(r.Budgets) != 2 {
		t.Fatalf("budgets %+v", r.Budgets)
	}
	ptp := r.Budgets[0]
	if ptp.Service != "PTP" || ptp.TotalNS > 100 || ptp.TotalNS < 20 {
		t.Errorf("PTP budget %.0f ns: %+v", ptp.TotalNS, ptp.Terms)
	}
	// The cable's term is its 5% tolerance: 7.6 ns.
	for _, term := range ptp.Terms {
		if term.Name == "antenna cable" && math.Abs(term.NS-7.6) > 0.01 {
			t.Errorf("cable term %.2f", term.NS)
		}
	}
}

// TestFaultsFound: each fault a site can have is found, with the verdict
// it deserves and something to do about it.
func TestFaultsFound(t *testing.T) {
	cfg := site(t)
	cases := []struct {
		name, id string
		want     Verdict
		spoil    func(o *Observations)
	}{
		{"no pulse", "pps.edges", Fail, func(o *Observations) { o.PPS.Counted, o.PPS.Edges = 0, nil }},
		{"a few pulses missing", "pps.edges", Warn, func(o *Observations) { o.PPS.Counted = 597 }},
		{"many pulses missing", "pps.edges", Fail, func(o *Observations) { o.PPS.Counted = 500 }},
		{"jittery pulse", "pps.jitter", Warn, func(o *Observations) {
			for i := range o.PPS.Edges {
				o.PPS.Edges[i].OffsetNS += float64(i%2) * 2000
			}
		}},
		{"width misconfigured", "pps.width", Fail, func(o *Observations) {
			for i := range o.PPS.Widths {
				o.PPS.Widths[i] = 200e6
			}
		}},
		{"antenna open", "receiver.antenna", Fail, func(o *Observations) { o.Receiver.Antenna = "open" }},
		{"antenna unknown", "receiver.antenna", Warn, func(o *Observations) { o.Receiver.Antenna = "unknown" }},
		{"survey running", "receiver.survey", Warn, func(o *Observations) { o.Receiver.Survey = &Survey{Active: true, DurationS: 60} }},
		{"no survey", "receiver.survey", Warn, func(o *Observations) { o.Receiver.Survey = nil }},
		{"fix lost", "receiver.fix", Fail, func(o *Observations) { o.Receiver.FixSeconds = 400 }},
		{"unknown receiver", "receiver.identity", Warn, func(o *Observations) { o.Receiver.Module, o.Receiver.Firmware = "", "" }},
		{"spoofed", "receiver.spoofing", Fail, func(o *Observations) { o.Receiver.Spoofing = "indicated" }},
		{"interface missing", "interface.eth0.20.link", Fail, func(o *Observations) { o.Interfaces[1] = InterfaceObs{Name: "eth0.20", Roles: []string{"ntp"}} }},
		{"link down", "interface.eth0.10.link", Fail, func(o *Observations) { o.Interfaces[0].OperState = "down" }},
		{"link flapped", "interface.eth0.10.link", Warn, func(o *Observations) { o.Interfaces[0].CarrierChanges = 2 }},
		{"software stamps used", "interface.eth0.10.timestamping", Fail, func(o *Observations) { o.Interfaces[0].Timestamping = "software" }},
		{"no hardware stamps", "interface.eth0.10.timestamping", Warn, func(o *Observations) {
			o.Interfaces[0].HWCapable, o.Interfaces[0].Timestamping = false, "software"
		}},
		{"another master", "interface.eth0.10.port", Warn, func(o *Observations) { o.Interfaces[0].PortState = "PASSIVE" }},
		{"follower gone", "follower.eth0.10.192.168.10.21", Fail, func(o *Observations) {
			o.LostLast = []string{"eth0.10 192.168.10.21"}
			o.Lost["eth0.10 192.168.10.21"] = 30
		}},
		{"follower flapped", "follower.eth0.10.192.168.10.21", Warn, func(o *Observations) { o.Lost["eth0.10 192.168.10.21"] = 3 }},
		{"recorder off", "monitor.milestone", Fail, func(o *Observations) { o.Monitors[0].OffsetNS = 40e6 }},
		{"recorder silent", "monitor.milestone", Fail, func(o *Observations) { o.Monitors[0].Answers = 0 }},
		{"leap table expired", "leap.table", Fail, func(o *Observations) { o.Leap.Expires = o.Start.Add(-time.Hour) }},
		{"leap table expiring", "leap.table", Warn, func(o *Observations) { o.Leap.Expires = o.Start.Add(10 * 24 * time.Hour) }},
		{"clock not locked", "clock.state", Fail, func(o *Observations) { o.Clock.Final, o.Clock.LockedPolls = "HOLDOVER", 100 }},
		{"clock locked late", "clock.state", Warn, func(o *Observations) { o.Clock.LockedPolls = 500 }},
		{"slow PHC reads", "phc.read", Warn, func(o *Observations) {
			for i := range o.PHC.Samples {
				o.PHC.Samples[i].WindowNS = 30000
			}
		}},
		{"system clock loose", "phc.system", Warn, func(o *Observations) {
			for i := range o.PHC.Samples {
				o.PHC.Samples[i].OffsetNS += 50000
			}
		}},
		{"cut short", "run.duration", Warn, func(o *Observations) { o.Elapsed = time.Minute }},
		{"standalone", "run.daemon", Warn, func(o *Observations) { o.Daemon = false }},
		{"PTP budget blown", "budget.PTP", Fail, func(o *Observations) {
			for i := range o.PPS.Edges {
				o.PPS.Edges[i].OffsetNS = float64(i%2) * 3000
			}
		}},
	}
	for _, c := range cases {
		o := goodRun(8)
		c.spoil(o)
		r := Analyze(cfg, o)
		got, ok := byID(r)[c.id]
		if !ok {
			t.Errorf("%s: no check %s", c.name, c.id)
			continue
		}
		if got.Verdict != c.want {
			t.Errorf("%s: %s is %s (%s: %s), want %s", c.name, c.id, got.Verdict, got.Figure, got.Reason, c.want)
		}
		if got.Action == "" || got.Reason == "" {
			t.Errorf("%s: %s says no reason or nothing to do: %+v", c.name, c.id, got)
		}
		if worse(r.Verdict, c.want) != r.Verdict {
			t.Errorf("%s: report verdict %s better than its check's %s", c.name, r.Verdict, c.want)
		}
	}
	// No cable delay entered: a warning, and an assumed term in the budget.
	cfg.GNSS.CableDelay.Duration = 0
	r := Analyze(cfg, goodRun(8))
	if c := byID(r)["delays.pulse"]; c.Verdict != Warn {
		t.Errorf("no cable delay: %+v", c)
	}
}

// TestStandalonePhaseWraps: a free-running clock 300 ppm fast crosses the
// half second during the run; the jitter is still the pulse's.
func TestStandalonePhaseWraps(t *testing.T) {
	cfg := site(t)
	o := goodRun(0)
	o.Daemon, o.Clock, o.Lost = false, nil, nil
	o.PPS.Disciplined = false
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range o.PPS.Edges {
		phase := 4.9e8 + 300e3*float64(i) + 20*rng.NormFloat64()
		phase = math.Mod(phase+5e8, 1e9) - 5e8 // what the edge's phase on its own clock looks like
		o.PPS.Edges[i].OffsetNS = phase
	}
	r := Analyze(cfg, o)
	if s := r.PPS.Residual.Sigma; math.Abs(s-20) > 3 {
		t.Errorf("jitter %.1f ns, want about 20", s)
	}
	if math.Abs(r.PPS.SlopePPB-300e3) > 10 {
		t.Errorf("slope %.0f ppb", r.PPS.SlopePPB)
	}
	if r.PPS.Offset != nil {
		t.Error("a free clock's offset judged")
	}
	ids := byID(r)
	if c := ids["follower.eth0.10.192.168.10.21"]; c.Verdict != Warn || c.Figure != "not checked" {
		t.Errorf("followers without the daemon: %+v", c)
	}
	if _, ok := ids["clock.state"]; ok {
		t.Error("the clock judged without the daemon")
	}
	// A standalone report without a PHC, monitors or followers renders.
	o.PHC, o.Monitors, o.Interfaces = nil, nil, nil
	if _, err := Analyze(cfg, o).HTML(); err != nil {
		t.Errorf("standalone page: %v", err)
	}
	// So does one of an NTP-only site (no receiver, no pulse).
	ntpOnly := *cfg
	ntpOnly.GNSS.Device = ""
	r = Analyze(&ntpOnly, &Observations{Start: o.Start, Planned: time.Minute, Elapsed: time.Minute})
	if _, err := r.HTML(); err != nil || len(r.Budgets) != 0 {
		t.Errorf("NTP-only page: %v, budgets %+v", err, r.Budgets)
	}
}

// TestReportRenders: the page is self-contained and carries every check;
// the JSON document parses back with its figures.
func TestReportRenders(t *testing.T) {
	o := goodRun(8)
	o.Interfaces[0].PortState = "PASSIVE"
	r := Analyze(site(t), o)
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	for _, bad := range []string{"src=", "href=", "url(", "@import", "<script", "<link"} {
		if strings.Contains(s, bad) {
			t.Errorf("the page loads something (%q)", bad)
		}
	}
	if n := strings.Count(s, "<svg"); n < 4 {
		t.Errorf("%d plots", n)
	}
	for _, c := range r.Checks {
		if !strings.Contains(s, template.HTMLEscapeString(c.Title)) {
			t.Errorf("check %q not on the page", c.Title)
		}
	}
	if !strings.Contains(s, `class="verdict WARN"`) {
		t.Error("the verdict is not shown")
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != Warn || len(back.Checks) != len(r.Checks) || len(back.PPS.Edges) != 600 || back.PHC == nil || len(back.Budgets) != 2 {
		t.Errorf("JSON lost figures: verdict %s, %d checks, %d edges", back.Verdict, len(back.Checks), len(back.PPS.Edges))
	}
}

func TestPlotsBounded(t *testing.T) {
	// A day-long series draws at most maxPoints points.
	x, y := make([]float64, 86400), make([]float64, 86400)
	for i := range x {
		x[i], y[i] = float64(i), float64(i%100)
	}
	svg := string(linePlot("t", "y", x, y))
	pts := strings.Count(svg[strings.Index(svg, "points="):], ",")
	if pts > maxPoints+2 {
		t.Errorf("%d points drawn", pts)
	}
	if linePlot("t", "y", nil, nil) != "" || histogram("h", []float64{1}, 10) != "" {
		t.Error("empty series drew a plot")
	}
}
