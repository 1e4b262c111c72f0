package commission

import (
	"math"
	"slices"
	"sync"
	"time"

	"sitegm/clock"
	"sitegm/hw/gnss"
	"sitegm/internal/config"
	"sitegm/internal/monitor"
	"sitegm/internal/status"
)

// Collector gathers the observations as the command's readers deliver
// them, from several goroutines: the daemon's status polls, or the
// receiver and the pulse read directly; the PHC; the interfaces.
type Collector struct {
	mu    sync.Mutex
	cfg   *config.Config
	o     Observations
	edges map[int64]Edge
	// The pulse's counters at the first look, and the first look's time.
	countFrom, dropFrom uint64
	counting            bool
	ppsFrom, ppsLast    time.Time
	ports               map[string]int // interface -> index in o.Interfaces
	links               map[string]int // carrier changes at the start
	// after is the newest pulse the daemon had paired before the run's
	// first look: those before the run are not the run's.
	after    int64
	afterSet bool
}

// maxEdges bounds the pulses kept: a day's run (the command caps its
// duration there) at one a second.
const maxEdges = 86400

// NewCollector starts a run's record.
func NewCollector(cfg *config.Config, host, version, path string, start time.Time, planned time.Duration) *Collector {
	c := &Collector{cfg: cfg, edges: map[int64]Edge{}, ports: map[string]int{}, links: map[string]int{}}
	c.o = Observations{Host: host, Version: version, Config: path, Start: start, Planned: planned}
	c.o.Receiver = ReceiverObs{Device: cfg.GNSS.Device, Antenna: "unknown", Jamming: "unknown", Spoofing: "unknown", MinSats: -1}
	c.o.PPS = PPSObs{Source: cfg.GNSS.PPS.String()}
	return c
}

// ConfigDigest records the configuration file's SHA-256.
func (c *Collector) ConfigDigest(hexSum string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.ConfigSHA256 = hexSum
}

// Problem notes what could not be observed.
func (c *Collector) Problem(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.o.Problems, s) && len(c.o.Problems) < 32 {
		c.o.Problems = append(c.o.Problems, s)
	}
}

// receiverLook takes one look at the receiver's state.
func (c *Collector) receiverLook(state string, sats int, at time.Time) {
	r := &c.o.Receiver
	if r.Seconds == 0 && state != "fix" && at.Sub(c.o.Start) < receiverGrace {
		return
	}
	r.Seconds++
	r.State = state
	if state == "fix" {
		r.FixSeconds++
	}
	if r.MinSats < 0 || sats < r.MinSats {
		r.MinSats = sats
	}
	r.MaxSats = max(r.MaxSats, sats)
}

func (c *Collector) version(v *status.Receiver) {
	if v == nil {
		return
	}
	r := &c.o.Receiver
	r.Module, r.Firmware, r.Hardware, r.Software, r.Protocol = v.Module, v.Firmware, v.Hardware, v.Software, v.Protocol
}

func surveyOf(s *gnss.SurveySummary) *Survey {
	if s == nil {
		return nil
	}
	return &Survey{Active: s.Active, Valid: s.Valid, DurationS: s.DurationS, MeanAccM: s.MeanAccM, Observations: s.Observations}
}

func (c *Collector) addEdge(e Edge) {
	if _, ok := c.edges[e.Second]; ok || len(c.edges) >= maxEdges {
		return
	}
	c.edges[e.Second] = e
}

// pulseCounts takes the source's counters at a look.
func (c *Collector) pulseCounts(at time.Time, edges, dropped uint64, width int64) {
	if !c.counting {
		c.counting, c.countFrom, c.dropFrom, c.ppsFrom = true, edges, dropped, at
	}
	c.ppsLast = at
	if edges >= c.countFrom {
		c.o.PPS.Counted = edges - c.countFrom
	}
	if dropped >= c.dropFrom {
		c.o.PPS.Dropped = dropped - c.dropFrom
	}
	if width > 0 && len(c.o.PPS.Widths) < maxEdges {
		c.o.PPS.Widths = append(c.o.PPS.Widths, float64(width))
	}
}

// DaemonStatus takes one poll of the running daemon's status.
func (c *Collector) DaemonStatus(s *status.Status, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.Daemon, c.o.DaemonState = true, s.Summary
	c.o.Polls++
	g := s.GNSS
	if g.State != "none" {
		c.receiverLook(g.State, g.Satellites, at)
		r := &c.o.Receiver
		r.Antenna, r.Jamming, r.Spoofing, r.TimeAccNS = g.Antenna, g.Jamming, g.Spoofing, g.TimeAccuracyNS
		r.Survey, r.Reports, r.BadChecksum = surveyOf(g.Survey), g.Reports, g.ChecksumErrors
		c.version(g.Receiver)
		c.o.PPS.Disciplined, c.o.PPS.Clock = true, s.Clock.Name
		if !c.afterSet {
			c.afterSet = true
			for _, e := range g.RecentEdges {
				c.after = max(c.after, e.Second)
			}
		}
		for _, e := range g.RecentEdges {
			if e.Second <= c.after {
				continue
			}
			c.addEdge(Edge{Second: e.Second, OffsetNS: float64(e.OffsetNS), QErrNS: e.QErrNS, HasQErr: e.Corrected})
		}
		c.pulseCounts(at, g.PPSEdges, 0, g.PPSWidthNS)
	}
	cl := c.o.Clock
	if cl == nil {
		cl = &ClockObs{}
		c.o.Clock = cl
	}
	if len(cl.States) == 0 || cl.States[len(cl.States)-1] != s.Clock.State {
		if len(cl.States) < 64 {
			cl.States = append(cl.States, s.Clock.State)
		}
	}
	cl.Final, cl.Class, cl.EstErrorNS, cl.Reference, cl.Name = s.Clock.State, s.Clock.ClockClass, s.Clock.EstErrorNS, s.Clock.Reference, s.Clock.Name
	if s.Clock.State == "LOCKED" {
		cl.LockedPolls++
	}
	cl.SystemErrNS = -1
	if sys := s.Clock.System; sys != nil {
		cl.SystemErrNS = sys.EstErrorNS
	}
	for _, p := range s.PTP {
		if i, ok := c.ports[p.Interface]; ok {
			ifc := &c.o.Interfaces[i]
			ifc.PortState, ifc.Timestamping = p.State, p.Timestamping
			if p.V1 != nil {
				ifc.V1State = p.V1.State
			}
		}
	}
	if c.o.Lost == nil {
		c.o.Lost = map[string]int{}
	}
	for _, l := range s.LostFollowers {
		c.o.Lost[l]++
	}
	c.o.LostLast = slices.Clone(s.LostFollowers)
	c.o.Monitors = c.o.Monitors[:0]
	for _, m := range s.Monitors {
		c.o.Monitors = append(c.o.Monitors, monitorObs(m))
	}
}

func monitorObs(m monitor.Status) MonitorObs {
	return MonitorObs{Name: m.Name, Host: m.Host, Polls: m.Polls, Answers: m.Answers, OffsetNS: m.OffsetNS, WarnNS: m.WarnNS,
		Compared: m.Compared, LastErr: m.LastError}
}

// receiverGrace is how long a receiver has to reach its fix before its
// state counts: a receiver read directly is opened with the run (or the
// daemon was just started), and the first seconds without a confirmed
// fix are the reader starting, not the receiver failing.
const receiverGrace = 10 * time.Second

// ReceiverSecond takes one look at a receiver read directly.
func (c *Collector) ReceiverSecond(g gnss.Snapshot, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receiverLook(string(g.State), g.Sats, at)
	r := &c.o.Receiver
	r.Antenna, r.Jamming, r.Spoofing, r.TimeAccNS, r.Survey, r.Reports = g.Antenna, g.Jamming, g.Spoofing, g.TimeAccNS, surveyOf(g.Survey), g.Reports
	if v := g.Version; v != nil {
		c.version(&status.Receiver{Module: v.Module, Firmware: v.Firmware, Hardware: v.Hardware, Software: v.Software, Protocol: v.Protocol})
	}
}

// ChecksumErrors records the decoder's count of bad checksums.
func (c *Collector) ChecksumErrors(n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.Receiver.BadChecksum = n
}

// QErr records a TIM-TP quantisation error (ps) seen standalone.
func (c *Collector) QErr(ps int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.o.PPS.QErrs) < maxEdges {
		c.o.PPS.QErrs = append(c.o.PPS.QErrs, float64(ps)/1000)
	}
}

// RawEdge records a pulse stamped on clockName, read directly: its phase
// within its own second on that clock.
func (c *Collector) RawEdge(t time.Time, clockName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sec := t.Round(time.Second)
	c.o.PPS.Clock = clockName
	c.addEdge(Edge{Second: sec.Unix(), OffsetNS: float64(t.Sub(sec))})
}

// SourceCounts records a directly read source's counters at a look.
func (c *Collector) SourceCounts(at time.Time, edges, dropped uint64, width int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pulseCounts(at, edges, dropped, width)
}

// PHC records one PHC - system reading; taiUTC is what a PHC on TAI is
// ahead of the system clock's UTC (0 for a PHC sitegm keeps on UTC).
func (c *Collector) PHC(dev, method string, so clock.SysOffset, taiUTC time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.phc(dev, method)
	if len(p.Samples) >= maxEdges {
		return
	}
	p.Samples = append(p.Samples, PHCSample{T: so.System.Sub(c.o.Start).Seconds(), OffsetNS: float64(so.PHC.Sub(so.System) - taiUTC),
		WindowNS: float64(so.Window)})
}

// PHCFailed counts a failed reading.
func (c *Collector) PHCFailed(dev, method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phc(dev, method).Failures++
}

func (c *Collector) phc(dev, method string) *PHCObs {
	if c.o.PHC == nil {
		c.o.PHC = &PHCObs{Device: dev, Method: method}
	}
	return c.o.PHC
}

// Interface records an interface's state; the first record of each is
// the start of the run, later ones update it (carrier changes count from
// the first).
func (c *Collector) Interface(ifc InterfaceObs, changes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.ports[ifc.Name]
	if !ok {
		c.ports[ifc.Name] = len(c.o.Interfaces)
		c.links[ifc.Name] = changes
		c.o.Interfaces = append(c.o.Interfaces, ifc)
		return
	}
	old := c.o.Interfaces[i]
	ifc.PortState, ifc.Timestamping, ifc.V1State = old.PortState, old.Timestamping, old.V1State
	if from := c.links[ifc.Name]; changes >= 0 && from >= 0 {
		ifc.CarrierChanges = changes - from
	}
	c.o.Interfaces[i] = ifc
}

// Monitors records directly polled hosts (standalone).
func (c *Collector) Monitors(ms []monitor.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.Monitors = c.o.Monitors[:0]
	for _, m := range ms {
		c.o.Monitors = append(c.o.Monitors, monitorObs(m))
	}
}

// Leap records the leap second table.
func (c *Collector) Leap(l LeapObs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.Leap = l
}

// Progress is what the progress line shows.
type Progress struct {
	Pulses   int
	Fix      string
	Clock    string
	Problems int
}

// Progress reads the run so far.
func (c *Collector) Progress() Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Progress{Pulses: len(c.edges), Fix: c.o.Receiver.State, Problems: len(c.o.Problems)}
	if c.o.Clock != nil {
		p.Clock = c.o.Clock.Final
	}
	return p
}

// Finish closes the record: the run lasted elapsed.
func (c *Collector) Finish(elapsed time.Duration) *Observations {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.o
	o.Elapsed = elapsed
	if o.Receiver.MinSats < 0 {
		o.Receiver.MinSats = 0
	}
	o.PPS.Edges = make([]Edge, 0, len(c.edges))
	for _, e := range c.edges {
		o.PPS.Edges = append(o.PPS.Edges, e)
	}
	slices.SortFunc(o.PPS.Edges, func(a, b Edge) int { return int(a.Second - b.Second) })
	if c.counting {
		// The pulses expected: one for each whole second between the
		// first and the last look at the counters (an interval of T s
		// holds at least floor(T) pulses, wherever it starts).
		o.PPS.Seconds = int(math.Floor(c.ppsLast.Sub(c.ppsFrom).Seconds()))
	}
	return &o
}
