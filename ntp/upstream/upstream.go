// Package upstream is sitegm's NTP client, sans-I/O: the poll schedule of
// each configured server ([[upstream]]), its clock filter, and the
// selection of the servers that agree (RFC 5905 clauses 10 and 11). The
// network code polls when a source says so and hands back what came; the
// daemon asks for the selection and hands it to the discipline, which
// compares it with the clock GNSS disciplines (the cross-check), or
// steers the clock by it when GNSS cannot (the fallback, or no receiver).
//
// Offsets are the server's clock minus the disciplined clock, both as UTC.
package upstream

import (
	"crypto/md5"
	"math"
	"net/netip"
	"sort"
	"sync"
	"time"

	"sitegm/ntp"
)

// Constants of RFC 5905 (clause 7.2, Figure 6) and the choices made here.
const (
	// phi is the frequency tolerance a dispersion grows by (15 ppm).
	phi = 15e-6
	// minDisp is the least root distance a sample has. RFC 5905 has
	// 10 ms; servers on a site's LAN or a good ISP are better known than
	// that, and the cross-check would be blunted by it: 1 ms.
	minDisp = time.Millisecond
	// filterLen samples are kept per source (clause 10).
	filterLen = 8
	// maxDist: a source farther than this is not a candidate (clause
	// 11.2: MAXDIST 1.5 s).
	maxDist = 1500 * time.Millisecond
	// iburstCount polls 2 s apart start a source with iburst (chrony
	// sends 4; ntpd 8).
	iburstCount = 4
	iburstGap   = 2 * time.Second
)

// Config is one [[upstream]].
type Config struct {
	Name             string // as written: HOST or HOST:PORT
	MinPoll, MaxPoll int    // log2 seconds
	IBurst, Prefer   bool
}

type sample struct {
	offset, delay, disp time.Duration
	at                  time.Time
}

// Source is one server's state.
type Source struct {
	cfg                 Config
	poll                int
	next                time.Time
	burst               int
	reach               uint8
	good                int // consecutive answered polls since the poll interval last changed
	filter              []sample
	stratum, leap       uint8
	rootDelay, rootDisp time.Duration
	precision           time.Duration
	lastErr             string
	polls, answers      uint64
	falseticker, chosen bool
	lastAnswer          time.Time
	// addr answered last; kernel: its exchange was timed by the kernel;
	// xleave: it answered in interleaved mode.
	addr           netip.Addr
	kernel, xleave bool
}

// RefID is the reference ID a server synchronized to addr gives (RFC 5905
// clause 7.3): an IPv4 address itself, the first four octets of the MD5
// digest of an IPv6 one.
func RefID(addr netip.Addr) [4]byte {
	var id [4]byte
	switch {
	case addr.Is4():
		id = addr.As4()
	case addr.Is6():
		b := addr.As16()
		sum := md5.Sum(b[:])
		copy(id[:], sum[:4])
	}
	return id
}

// NewSource starts a source; its first poll is due at now.
func NewSource(cfg Config, now time.Time) *Source {
	s := &Source{cfg: cfg, poll: cfg.MinPoll, next: now}
	if cfg.IBurst {
		s.burst = iburstCount - 1 // the first poll and 3 more
	}
	return s
}

// Due says when the next poll is due.
func (s *Source) Due() time.Time { return s.next }

// Polled records a request sent at now and schedules the next one.
func (s *Source) Polled(now time.Time) {
	s.polls++
	s.reach <<= 1
	if s.burst > 0 {
		s.burst--
		s.next = now.Add(iburstGap)
		return
	}
	s.next = now.Add(time.Duration(1<<s.poll) * time.Second)
}

// Answer takes a reply's sample for the request sent at t1 (received at
// t4), on the disciplined clock.
func (s *Source) Answer(smp ntp.Sample, t1, t4 time.Time) {
	s.reach |= 1
	s.answers++
	s.lastErr = ""
	off, delay := smp.Offset(t1, t4)
	if delay < 0 {
		delay = 0
	}
	s.precision = time.Duration(math.Ldexp(float64(time.Second), int(smp.Precision)))
	// Clause 10: the sample's own dispersion, the two clocks' precision
	// and the tolerance over the round trip.
	disp := s.precision + time.Microsecond + time.Duration(phi*float64(delay))
	s.filter = append(s.filter, sample{off, delay, disp, t4})
	if len(s.filter) > filterLen {
		s.filter = s.filter[1:]
	}
	s.stratum, s.leap = smp.Stratum, smp.Leap
	s.rootDelay, s.rootDisp, s.lastAnswer = smp.RootDelay, smp.RootDisp, t4
	// The poll interval grows by one step after 8 answered polls in a row
	// at the current one, up to maxpoll; a miss brings it back a step.
	s.good++
	if s.good >= filterLen && s.poll < s.cfg.MaxPoll && s.burst == 0 {
		s.poll++
		s.good = 0
	}
}

// Miss records a poll without an answer (why).
func (s *Source) Miss(why string) {
	s.lastErr = why
	s.good = 0
	if s.poll > s.cfg.MinPoll {
		s.poll--
	}
}

// Kissed records a Kiss-o'-Death (RFC 5905 clause 7.4): RATE asks to
// slow down, so the poll interval goes up a step (to maxpoll at most) and
// any burst ends; DENY and RSTR refuse service, so the source is polled
// at maxpoll only, to notice when it serves again. Unlike a miss, a kiss
// never makes the polls more frequent.
func (s *Source) Kissed(code string) {
	s.lastErr = "kiss-o'-death " + code
	s.good, s.burst = 0, 0
	switch code {
	case "DENY", "RSTR":
		s.poll = s.cfg.MaxPoll
	default:
		s.poll = min(s.poll+1, s.cfg.MaxPoll)
	}
}

// best is the filter's sample of least distance at now, half its delay
// plus its dispersion grown since (clause 10: the one least disturbed by
// the network, a newer one before an older one of the same delay), with
// the filter's jitter: the RMS of the other samples' offsets from it.
func (s *Source) best(now time.Time) (sample, time.Duration, bool) {
	if len(s.filter) == 0 {
		return sample{}, 0, false
	}
	dist := func(x sample) time.Duration {
		return x.delay/2 + x.disp + time.Duration(phi*float64(now.Sub(x.at)))
	}
	b := s.filter[0]
	for _, x := range s.filter[1:] {
		if dist(x) <= dist(b) {
			b = x
		}
	}
	var sum float64
	for _, x := range s.filter {
		d := float64(x.offset - b.offset)
		sum += d * d
	}
	jitter := time.Duration(0)
	if n := len(s.filter) - 1; n > 0 {
		jitter = time.Duration(math.Sqrt(sum / float64(n)))
	}
	return b, max(jitter, s.precision), true
}

// Candidate is a source as the selection sees it.
type Candidate struct {
	Name     string
	Offset   time.Duration // server minus the disciplined clock
	Delay    time.Duration
	Jitter   time.Duration
	RootDist time.Duration // the half-width of its correctness interval
	Stratum  int
	Prefer   bool
	// At is when the sample was taken (the disciplined clock's UTC);
	// RootDelay the server's root delay plus the path to it; RefID what
	// a server synchronized to it says; Poll its poll interval.
	At        time.Time
	RootDelay time.Duration
	RefID     [4]byte
	Poll      time.Duration
}

// Candidate is the source's current candidate at now; ok is false when
// it has none (never answered, unreachable for 8 polls, unsynchronized,
// or farther than 1.5 s).
func (s *Source) Candidate(now time.Time) (Candidate, bool) {
	b, jitter, ok := s.best(now)
	if !ok || s.reach == 0 || s.leap == 3 || s.stratum == 0 || s.stratum > 15 {
		return Candidate{}, false
	}
	age := now.Sub(b.at)
	// Clause 11.2, root distance: half the path to the primary source,
	// its dispersion, this sample's dispersion grown since, and jitter.
	lambda := max(minDisp, s.rootDelay+b.delay)/2 + s.rootDisp + b.disp + time.Duration(phi*float64(age)) + jitter
	if lambda > maxDist {
		return Candidate{}, false
	}
	return Candidate{Name: s.cfg.Name, Offset: b.offset, Delay: b.delay, Jitter: jitter, RootDist: lambda,
		Stratum: int(s.stratum), Prefer: s.cfg.Prefer, At: b.at, RootDelay: s.rootDelay + b.delay, RefID: RefID(s.addr),
		Poll: time.Duration(1<<s.poll) * time.Second}, true
}

// Selection is the result of choosing among the candidates.
type Selection struct {
	OK bool
	// Offset is the survivors' combined offset (server minus clock),
	// RootDist the half-width of the interval it is known within.
	Offset, RootDist time.Duration
	Survivors        []string
	Falsetickers     []string
	// Best is the system peer: the survivor of least root distance (a
	// prefer one first); Stratum its stratum.
	Best    string
	Stratum int
	// Jitter is the survivors' scatter about the combined offset, or the
	// system peer's own jitter when larger: the deviation of a sample.
	Jitter time.Duration
	// At, RootDelay, RefID and Poll are the system peer's (Candidate).
	At        time.Time
	RootDelay time.Duration
	RefID     [4]byte
	Poll      time.Duration
}

// Select finds the largest group of candidates whose correctness
// intervals [offset - rootdist, offset + rootdist] share a point, as long
// as it is a majority (RFC 5905 clause 11.2.1, Marzullo's algorithm): the
// rest are falsetickers. The survivors' offsets are combined weighted by
// the inverse of their root distances (clause 11.2.3).
func Select(cands []Candidate) Selection {
	n := len(cands)
	if n == 0 {
		return Selection{}
	}
	type edge struct {
		at   time.Duration
		kind int // -1 lower endpoint, +1 upper endpoint
	}
	var edges []edge
	for _, c := range cands {
		edges = append(edges, edge{c.Offset - c.RootDist, -1}, edge{c.Offset + c.RootDist, +1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].kind < edges[j].kind // a lower endpoint first: touching intervals overlap
	})
	var lo, hi time.Duration
	found := false
	// Allow f falsetickers, fewest first, while the rest are a majority.
	for f := 0; 2*f < n && !found; f++ {
		need := n - f
		okLo, okHi := false, false
		count := 0
		for _, e := range edges {
			count -= e.kind
			if count >= need {
				lo, okLo = e.at, true
				break
			}
		}
		count = 0
		for i := len(edges) - 1; i >= 0; i-- {
			count += edges[i].kind
			if count >= need {
				hi, okHi = edges[i].at, true
				break
			}
		}
		found = okLo && okHi && lo <= hi
	}
	if !found {
		sel := Selection{}
		for _, c := range cands {
			sel.Falsetickers = append(sel.Falsetickers, c.Name)
		}
		return sel
	}
	sel := Selection{OK: true}
	var wsum, osum float64
	var best *Candidate
	var survivors []*Candidate
	for i := range cands {
		c := &cands[i]
		if c.Offset+c.RootDist < lo || c.Offset-c.RootDist > hi {
			sel.Falsetickers = append(sel.Falsetickers, c.Name)
			continue
		}
		sel.Survivors = append(sel.Survivors, c.Name)
		survivors = append(survivors, c)
		w := 1 / float64(c.RootDist)
		wsum += w
		osum += w * float64(c.Offset)
		if best == nil || c.Prefer && !best.Prefer || c.Prefer == best.Prefer && c.RootDist < best.RootDist {
			best = c
		}
	}
	sel.Offset = time.Duration(osum / wsum)
	// The combined offset is known within the system peer's distance,
	// widened by how far the survivors scatter around it.
	var scatter float64
	for _, c := range survivors {
		d := float64(c.Offset - sel.Offset)
		scatter += d * d
	}
	spread := time.Duration(math.Sqrt(scatter / float64(len(survivors))))
	sel.RootDist = best.RootDist + spread
	sel.Best, sel.Stratum = best.Name, best.Stratum
	sel.Jitter = max(spread, best.Jitter)
	sel.At, sel.RootDelay, sel.RefID, sel.Poll = best.At, best.RootDelay, best.RefID, best.Poll
	return sel
}

// Status is one source for `sitegm status`.
type Status struct {
	Name        string  `json:"name"`
	Reach       uint8   `json:"reach"`
	PollS       int     `json:"poll_s"`
	Stratum     int     `json:"stratum"`
	OffsetNS    int64   `json:"offset_ns"`
	DelayNS     int64   `json:"delay_ns"`
	RootDistNS  int64   `json:"root_distance_ns"`
	State       string  `json:"state"` // "selected", "survivor", "falseticker", "candidate", "unusable"
	LastError   string  `json:"last_error,omitempty"`
	Polls       uint64  `json:"polls"`
	Answers     uint64  `json:"answers"`
	LastAnswerS float64 `json:"last_answer_s"` // -1 never
	// Address answered last; Timestamps "kernel" or "user", and
	// ", interleaved" when the server answers in interleaved mode.
	Address    string `json:"address,omitempty"`
	Timestamps string `json:"timestamps,omitempty"`
}

// Set is the configured sources, shared by the pollers and the daemon.
type Set struct {
	mu      sync.Mutex
	sources []*Source
	last    Selection
	fresh   bool   // an answer came since the last selection
	gen     uint64 // clock steps so far
	sentGen []uint64
}

// NewSet starts the sources of cfgs at now.
func NewSet(cfgs []Config, now time.Time) *Set {
	s := &Set{}
	for _, c := range cfgs {
		s.sources = append(s.sources, NewSource(c, now))
	}
	s.sentGen = make([]uint64, len(s.sources))
	return s
}

// Len is the number of sources.
func (s *Set) Len() int { return len(s.sources) }

// Config of source i.
func (s *Set) Config(i int) Config { return s.sources[i].cfg }

// Due is when source i's next poll is due.
func (s *Set) Due(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sources[i].Due()
}

// Polled records that source i was polled at now; it returns the clock
// step generation the poll is made in (an exchange of an earlier one
// measured another clock).
func (s *Set) Polled(i int, now time.Time) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[i].Polled(now)
	s.sentGen[i] = s.gen
	return s.gen
}

// Answer records source i's reply.
func (s *Set) Answer(i int, smp ntp.Sample, t1, t4 time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sentGen[i] != s.gen {
		s.sources[i].lastErr = "the clock was stepped during the exchange"
		return
	}
	s.sources[i].Answer(smp, t1, t4)
	s.fresh = true
}

// Heard records who answered source i's last poll, and whether the
// kernel timed the exchange.
func (s *Set) Heard(i int, from netip.Addr, kernel, interleaved bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[i].addr, s.sources[i].kernel, s.sources[i].xleave = from, kernel, interleaved
}

// Reached records that source i answered its last poll without a new
// sample (an interleaved answer completing an exchange already taken).
func (s *Set) Reached(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[i].reach |= 1
	s.sources[i].lastErr = ""
}

// Miss records that source i did not answer.
func (s *Set) Miss(i int, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[i].Miss(why)
}

// Kissed records source i's Kiss-o'-Death code.
func (s *Set) Kissed(i int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[i].Kissed(code)
}

// Stepped forgets every source's samples: the clock they were measured
// against was stepped (RFC 5905 clause 10 clears the filter likewise).
// An answer to a request sent before the step would be measured across
// it: it is dropped (the step generation it was sent in is not the
// current one).
func (s *Set) Stepped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.sources {
		src.filter = nil
	}
	s.fresh = false
	s.gen++
}

// Select chooses among the sources at now; fresh says whether an answer
// came since the previous call (a judgement should count only new
// evidence).
func (s *Set) Select(now time.Time) (sel Selection, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cands []Candidate
	for _, src := range s.sources {
		if c, ok := src.Candidate(now); ok {
			cands = append(cands, c)
		}
	}
	sel = Select(cands)
	in := func(list []string, n string) bool {
		for _, x := range list {
			if x == n {
				return true
			}
		}
		return false
	}
	for _, src := range s.sources {
		src.falseticker = in(sel.Falsetickers, src.cfg.Name)
		src.chosen = sel.OK && sel.Best == src.cfg.Name
	}
	s.last, fresh, s.fresh = sel, s.fresh, false
	return sel, fresh
}

// Status lists the sources at now, as of the last selection.
func (s *Set) Status(now time.Time) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.sources))
	for _, src := range s.sources {
		st := Status{Name: src.cfg.Name, Reach: src.reach, PollS: 1 << src.poll, Stratum: int(src.stratum), LastError: src.lastErr,
			Polls: src.polls, Answers: src.answers, LastAnswerS: -1, State: "unusable"}
		if !src.lastAnswer.IsZero() {
			st.LastAnswerS = now.Sub(src.lastAnswer).Seconds()
			st.Timestamps = "user"
			if src.kernel {
				st.Timestamps = "kernel"
			}
			if src.xleave {
				st.Timestamps += ", interleaved"
			}
		}
		if src.addr.IsValid() {
			st.Address = src.addr.String()
		}
		if c, ok := src.Candidate(now); ok {
			st.OffsetNS, st.DelayNS, st.RootDistNS, st.State = int64(c.Offset), int64(c.Delay), int64(c.RootDist), "candidate"
			for _, n := range s.last.Survivors {
				if n == src.cfg.Name {
					st.State = "survivor"
				}
			}
		}
		switch {
		case src.chosen:
			st.State = "selected"
		case src.falseticker:
			st.State = "falseticker"
		}
		out = append(out, st)
	}
	return out
}
