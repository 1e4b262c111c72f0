// Package followers keeps who follows sitegm: the PTP slaves seen through
// their Delay_Req (v2 clockIdentity and port, v1 UUID and port) and the
// NTP clients seen through their requests. Sans-I/O: the network code
// calls Seen with what a packet says; the tables are read for the status,
// the page and the metrics.
//
// Every table is bounded (a sender chooses its identity and address, so a
// flood of made-up ones must not grow memory), and a flood must not push
// the real followers out either: the table is a segmented LRU. A new
// sender enters a small probation segment (a quarter of the table); a
// second request, at least minRepeat after the first, moves it to the
// protected segment. A flood of one-shot identities churns probation
// only; evictions are counted.
package followers

import (
	"container/list"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind says which protocol a follower speaks.
type Kind uint8

// Kinds.
const (
	PTPv2 Kind = iota + 1
	PTPv1
	NTP
)

func (k Kind) String() string {
	switch k {
	case PTPv2:
		return "ptp"
	case PTPv1:
		return "ptpv1"
	case NTP:
		return "ntp"
	}
	return "?"
}

// Key identifies a follower on an interface: PTP by its port identity
// (v2: 8-byte clockIdentity and 2-byte port number; v1: 6-byte UUID and
// port), NTP by its address.
type Key struct {
	Kind  Kind
	Iface string
	ID    [10]byte
	Addr  netip.Addr // NTP only
}

// Identity is the key as operators write it: v2 "0011aa.fffe.bbccdd-1",
// v1 "00:11:aa:bb:cc:dd-1", NTP the address.
func (k Key) Identity() string {
	switch k.Kind {
	case PTPv2:
		h := hex.EncodeToString(k.ID[:8])
		return fmt.Sprintf("%s.%s.%s-%d", h[:6], h[6:10], h[10:], int(k.ID[8])<<8|int(k.ID[9]))
	case PTPv1:
		b := k.ID
		return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x-%d", b[0], b[1], b[2], b[3], b[4], b[5], int(b[6])<<8|int(b[7]))
	}
	return k.Addr.String()
}

// Entry is what is known of one follower.
type Entry struct {
	Key
	Addr        netip.Addr    `json:"address"`
	Version     int           `json:"version,omitempty"` // NTP version
	Mode        int           `json:"mode,omitempty"`    // NTP mode (3 client, 1 symmetric active)
	First, Last time.Time     `json:"-"`
	Count       uint64        `json:"requests"`
	KoD         uint64        `json:"kod,omitempty"`
	Interval    time.Duration `json:"-"` // observed time between requests (a running mean)
}

// Capacity is each table's default size: far above a site's followers
// (tens of Dante devices, a few cameras and servers), small enough that a
// flood of invented senders costs a few hundred kB.
const Capacity = 1024

// minRepeat is how long after its first request a sender's second one
// must come to promote it: a PTP slave repeats every 2^-7..2^7 s, an NTP
// client every 2^4 s or more, while a flood repeats at once or never.
const minRepeat = 5 * time.Millisecond

// Table is one bounded table of followers.
type Table struct {
	mu        sync.Mutex
	probCap   int
	protCap   int
	m         map[Key]*list.Element
	probation *list.List // front: seen most recently
	protected *list.List
	evicted   uint64
}

// entry is an Entry and the segment it is in.
type entry struct {
	Entry
	protected bool
}

// New returns a table that holds at most capacity followers.
func New(capacity int) *Table {
	capacity = max(capacity, 2)
	prob := max(capacity/4, 1)
	return &Table{probCap: prob, protCap: capacity - prob, m: map[Key]*list.Element{},
		probation: list.New(), protected: list.New()}
}

// evictProbation makes room in probation.
func (t *Table) evictProbation() {
	for t.probation.Len() >= t.probCap {
		old := t.probation.Back()
		delete(t.m, old.Value.(*entry).Key)
		t.probation.Remove(old)
		t.evicted++
	}
}

// promote moves el from probation to protected; protected's least
// recent entry goes back to probation when it is full.
func (t *Table) promote(el *list.Element) {
	e := el.Value.(*entry)
	t.probation.Remove(el)
	if t.protected.Len() >= t.protCap {
		old := t.protected.Back()
		oe := old.Value.(*entry)
		t.protected.Remove(old)
		t.evictProbation()
		oe.protected = false
		t.m[oe.Key] = t.probation.PushFront(oe)
	}
	e.protected = true
	t.m[e.Key] = t.protected.PushFront(e)
}

// PTPSeen is what a PTP port on iface hands each Delay_Req's sender
// (hw/ptpnet's Config.Seen): v2 by its port identity, v1 by its UUID and
// port id.
func (t *Table) PTPSeen(iface string) func(v1 bool, id [10]byte, from netip.Addr, at time.Time) {
	return func(v1 bool, id [10]byte, from netip.Addr, at time.Time) {
		k := Key{Kind: PTPv2, Iface: iface, ID: id}
		if v1 {
			k.Kind = PTPv1
		}
		t.Seen(k, from, at, 0, 0, false)
	}
}

// NTPSeen is what the NTP server on iface hands each client it answered
// (hw/ntpnet's Options.Seen), by address.
func (t *Table) NTPSeen(iface string) func(from netip.Addr, at time.Time, version, mode int, kod bool) {
	return func(from netip.Addr, at time.Time, version, mode int, kod bool) {
		t.Seen(Key{Kind: NTP, Iface: iface, Addr: from}, from, at, version, mode, kod)
	}
}

// Seen records a request from k at address addr at time at; version and
// mode are the NTP request's (0 for PTP), kod whether it was answered
// with a Kiss-o'-Death.
func (t *Table) Seen(k Key, addr netip.Addr, at time.Time, version, mode int, kod bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var e *entry
	if el, ok := t.m[k]; ok {
		e = el.Value.(*entry)
		switch {
		case e.protected:
			t.protected.MoveToFront(el)
		case at.Sub(e.First) >= minRepeat:
			t.promote(el)
		default:
			t.probation.MoveToFront(el)
		}
		if gap := at.Sub(e.Last); gap > 0 {
			// A running mean over about eight requests: one odd gap
			// (a restart, a burst) moves it by an eighth.
			if e.Interval == 0 {
				e.Interval = gap
			} else {
				e.Interval += (gap - e.Interval) / 8
			}
		}
	} else {
		t.evictProbation()
		e = &entry{Entry: Entry{Key: k, First: at}}
		t.m[k] = t.probation.PushFront(e)
	}
	e.Addr, e.Last, e.Version, e.Mode = addr, at, version, mode
	e.Count++
	if kod {
		e.KoD++
	}
}

// Snapshot returns copies of the entries, most recently seen first.
func (t *Table) Snapshot() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Entry, 0, len(t.m))
	for _, l := range []*list.List{t.protected, t.probation} {
		for el := l.Front(); el != nil; el = el.Next() {
			out = append(out, el.Value.(*entry).Entry)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Last.After(out[j].Last) })
	return out
}

// Evicted is how many entries made room for newer ones.
func (t *Table) Evicted() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evicted
}

// Active counts the followers per kind and interface seen within window
// of now.
func (t *Table) Active(now time.Time, window time.Duration) map[Key]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[Key]int{}
	for _, el := range t.m {
		if e := el.Value.(*entry); now.Sub(e.Last) <= window {
			out[Key{Kind: e.Kind, Iface: e.Iface}]++
		}
	}
	return out
}

// Expected is one follower an operator listed (`expect` in a [[ptp]] or
// [[ntp]] table): a PTP identity (with or without "-PORT"), a v1 UUID, or
// an address (which matches any follower seen from it).
type Expected struct {
	Kind  Kind // PTPv2 covers v1 too: a Dante device may speak either
	Iface string
	Name  string // as written
}

// match says whether entry e is the expected follower.
func (x Expected) match(e *Entry) bool {
	if e.Iface != x.Iface || (x.Kind == NTP) != (e.Kind == NTP) {
		return false
	}
	if a, err := netip.ParseAddr(x.Name); err == nil {
		return e.Addr == a
	}
	id := e.Identity()
	return id == x.Name || strings.HasPrefix(id, x.Name+"-")
}

// ParseExpected checks an `expect` entry: an IPv4/IPv6 address, a v2
// clockIdentity "xxxxxx.xxxx.xxxxxx[-PORT]" or a v1 UUID
// "xx:xx:xx:xx:xx:xx[-PORT]" (PTP only).
func ParseExpected(kind Kind, s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if kind == NTP {
		return fmt.Errorf("%q: an NTP client is expected by its address", s)
	}
	id, port, hasPort := strings.Cut(s, "-")
	if hasPort {
		var p int
		if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 0 || p > 65535 || fmt.Sprint(p) != port {
			return fmt.Errorf("%q: bad port number", s)
		}
	}
	hexOnly := func(s string, n int) bool {
		if len(s) != n {
			return false
		}
		_, err := hex.DecodeString(s)
		return err == nil
	}
	if f := strings.Split(id, "."); len(f) == 3 && hexOnly(f[0], 6) && hexOnly(f[1], 4) && hexOnly(f[2], 6) && strings.ToLower(id) == id {
		return nil
	}
	if f := strings.Split(id, ":"); len(f) == 6 && strings.ToLower(id) == id {
		ok := true
		for _, x := range f {
			ok = ok && hexOnly(x, 2)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%q: expected an address, a clockIdentity (0011aa.fffe.bbccdd[-1]) or a v1 UUID (00:11:aa:bb:cc:dd[-1]), lower case", s)
}

// Watch tells when expected followers go silent and come back.
type Watch struct {
	start  time.Time
	expect []Expected
	lost   map[int]bool
	// Silence before an expected follower counts as lost: Factor times
	// its observed request interval, at least Min (and, for one never
	// seen, Min after the start).
	Factor   map[Kind]int
	Min      map[Kind]time.Duration
	lastSeen map[int]time.Time
}

// Change is an expected follower lost or back.
type Change struct {
	Expected
	Lost   bool
	Silent time.Duration // how long it has been silent (lost), or was (back)
	Seen   *Entry        // the entry last seen, nil if never
}

// NewWatch watches expect from start. The defaults: a PTP follower is
// lost after 8 of its Delay_Req intervals without one, at least 10 s (a
// slave sends one every 2^logMinDelayReqInterval s, an eighth of a
// second in AES67); an NTP client after 4 of its polls, at least 5 min
// (clients poll every 64 s to 36 h; w32time every hour or less often).
func NewWatch(start time.Time, expect []Expected) *Watch {
	return &Watch{start: start, expect: expect, lost: map[int]bool{}, lastSeen: map[int]time.Time{},
		Factor: map[Kind]int{PTPv2: 8, NTP: 4},
		Min:    map[Kind]time.Duration{PTPv2: 10 * time.Second, NTP: 5 * time.Minute}}
}

// Check compares the tables with the expected followers at now.
func (w *Watch) Check(now time.Time, entries []Entry) []Change {
	var out []Change
	for i, x := range w.expect {
		var best *Entry
		for j := range entries {
			e := &entries[j]
			if x.match(e) && (best == nil || e.Last.After(best.Last)) {
				best = e
			}
		}
		kind := x.Kind
		if kind == PTPv1 {
			kind = PTPv2
		}
		limit := w.Min[kind]
		since := w.start
		if best != nil {
			since = best.Last
			if best.Interval > 0 {
				limit = max(limit, time.Duration(w.Factor[kind])*best.Interval)
			}
		}
		silent := now.Sub(since)
		switch lost := silent > limit; {
		case lost && !w.lost[i]:
			w.lost[i] = true
			out = append(out, Change{Expected: x, Lost: true, Silent: silent, Seen: best})
		case !lost && w.lost[i] && best != nil:
			w.lost[i] = false
			out = append(out, Change{Expected: x, Silent: best.Last.Sub(w.lastSeen[i]), Seen: best})
		}
		if best != nil && !w.lost[i] {
			w.lastSeen[i] = best.Last
		}
	}
	return out
}

// Lost lists the expected followers lost now.
func (w *Watch) Lost() []Expected {
	var out []Expected
	for i, x := range w.expect {
		if w.lost[i] {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}
