package daemon

import (
	"context"
	"net"
	"sitegm/clock/discipline"
	"sitegm/event"
	"strings"
	"sync/atomic"
	"time"

	"sitegm/hw/ntpnet"
	"sitegm/hw/ptpnet"
	"sitegm/internal/config"
	"sitegm/internal/logging"
	"sitegm/internal/supervise"
	"sitegm/internal/web"
	"sitegm/ntp"
	"sitegm/ptp"
	v1 "sitegm/ptp/v1"
)

// gmPair is what the PTP ports advertise, published by the main loop.
type gmPair struct {
	v2  ptp.GM
	v1  v1.GM
	est time.Duration // the clock's error bound then (<0 unknown)
}

// ptpSlot holds the running server of one [[ptp]] section (nil while its
// interface is not there yet).
type ptpSlot struct {
	cfg  config.PTP
	srv  atomic.Pointer[ptpnet.Server]
	slot supervise.Slot
}

// ntpSlot is the same for one [[ntp]] section.
type ntpSlot struct {
	cfg  config.NTP
	srv  atomic.Pointer[ntpnet.Server]
	slot supervise.Slot
}

// startWatch starts polling the monitored hosts and the HTTP endpoint;
// the returned func stops the endpoint (the polls end with ctx).
func (d *Daemon) startWatch(ctx context.Context) func() {
	now := func() (time.Time, error) {
		i, err := d.tb.Now()
		if err != nil {
			return time.Time{}, err
		}
		utc, _ := i.UTC()
		return utc, nil
	}
	for i, h := range d.watch.Monitors {
		host, port, _ := config.SplitHostPort(d.cfg.Monitor[i].Host, 123)
		go ntpnet.Poll(ctx, h.Config().Interval, host, port, now, func(r ntp.PollResult) { h.Record(r, time.Duration(d.ownBound.Load())) })
	}
	for i := 0; i < d.upstreams.Len(); i++ {
		host, port, _ := config.SplitHostPort(d.upstreams.Config(i).Name, 123)
		go ntpnet.PollUpstream(ctx, d.upstreams, i, host, port, now)
	}
	if d.cfg.HTTP.Listen == "" {
		return func() {}
	}
	stop, err := web.Serve(d.cfg.HTTP.Listen, web.New(d.status.Last, d.watch.History).Handler(), d.log)
	if err != nil {
		d.log.Warn("HTTP endpoint unavailable: no status page or metrics", "event", "http_error",
			"http_listen", d.cfg.HTTP.Listen, "error", err.Error())
		return func() {}
	}
	return stop
}

// runPTP keeps one [[ptp]] port served.
func (d *Daemon) runPTP(ctx context.Context, ps *ptpSlot) {
	supervise.Keep(ctx, d.log, "ptp", ps.cfg.Interface, func() (func(context.Context) error, error) {
		srv, err := ptpnet.NewServer(ps.cfg.Net(d.watch.Followers.PTPSeen(ps.cfg.Interface)), d.tb, d.log)
		if err != nil {
			return nil, err
		}
		if g := d.gmLatest.Load(); g != nil {
			srv.SetGM(g.v2, g.v1, g.est)
		}
		return func(c context.Context) error {
			ps.srv.Store(srv)
			defer ps.srv.Store(nil)
			return srv.Run(c)
		}, nil
	})
}

// runNTP keeps one [[ntp]] interface served.
func (d *Daemon) runNTP(ctx context.Context, ns *ntpSlot) {
	supervise.Keep(ctx, d.log, "ntp", ns.cfg.Interface, func() (func(context.Context) error, error) {
		if _, err := net.InterfaceByName(ns.cfg.Interface); err != nil {
			return nil, err
		}
		var keys *ntp.CookieKeys
		if d.nts != nil {
			keys = d.nts.Keys
		}
		srv := ntpnet.NewServer(d.cfg.NTPNet(ns.cfg, keys, d.watch.Followers.NTPSeen(ns.cfg.Interface)), d.tb, &d.ntpView, d.log)
		return func(c context.Context) error {
			ns.srv.Store(srv)
			defer ns.srv.Store(nil)
			return srv.Run(c)
		}, nil
	})
}

// startServers starts every table of cfg that is not running yet.
func (d *Daemon) startServers(ctx context.Context) {
	for _, ps := range d.ptps {
		if !ps.slot.Started() {
			ps.slot = supervise.Start(ctx, &d.servers, func(c context.Context) { d.runPTP(c, ps) })
		}
	}
	for _, ns := range d.ntps {
		if !ns.slot.Started() {
			ns.slot = supervise.Start(ctx, &d.servers, func(c context.Context) { d.runNTP(c, ns) })
		}
	}
}

// allServing: every configured port has its sockets open.
func (d *Daemon) allServing() bool {
	for _, ps := range d.ptps {
		if ps.srv.Load() == nil {
			return false
		}
	}
	for _, n := range d.NTPStatuses() {
		if n.State != "SERVING" {
			return false
		}
	}
	return true
}

// publishGM hands every PTP port what the quality machine advertises now.
// The leap flags are for the day the served clock is in, not the host's.
func (d *Daemon) publishGM() {
	utc := d.clockUTC()
	a := d.disc.Quality().Advertise(utc, d.table, d.disc.LeapKnown(utc))
	g, g1 := ptp.GMOf(a), v1.GMOf(a)
	est := d.disc.Quality().EstError()
	d.gmLatest.Store(&gmPair{g, g1, est})
	for _, slot := range d.ptps {
		if srv := slot.srv.Load(); srv != nil {
			srv.SetGM(g, g1, est)
		}
	}
}

// publishNTP hands the NTP workers the header for the quality state (RFC
// 5905 7.3 via clock/quality) and the mapping of their stamps onto UTC.
// While the clock cannot be read they keep the last view, held
// (ntp.Header.Held): its conversion is good for a moment, then replies
// say the time is not to be trusted.
func (d *Daemon) publishNTP() {
	m, now, err := d.tb.Map()
	if err != nil {
		if prev := d.ntpView.Load(); prev != nil {
			if h := prev.Header.Held(d.reads.FailingFor(time.Now())); h != prev.Header {
				v := *prev
				v.Header = h
				d.ntpView.Store(&v)
			}
		}
		return
	}
	d.lastNow = now
	utc := m.UTC(now.Clock().UnixNano())
	n := d.disc.Quality().NTP(utc, d.table)
	d.ntpView.Store(&ntpnet.View{Header: ntp.HeaderOf(n, d.ntpPrecision, utc), Map: m})
}

// PTPStatuses reports every PTP port.
func (d *Daemon) PTPStatuses() []ptpnet.Status {
	var out []ptpnet.Status
	for _, slot := range d.ptps {
		c := slot.cfg
		st := ptpnet.Down(c.Interface, c.Profile, c.Domain, string(c.Transport))
		if srv := slot.srv.Load(); srv != nil {
			if p := srv.Status(); p != nil {
				st = *p
			}
		}
		out = append(out, st)
	}
	return out
}

// NTPStatuses reports every NTP interface.
func (d *Daemon) NTPStatuses() []ntpnet.Status {
	var out []ntpnet.Status
	for _, slot := range d.ntps {
		st := ntpnet.Status{Interface: slot.cfg.Interface, Port: slot.cfg.Port, State: "DOWN"}
		if srv := slot.srv.Load(); srv != nil {
			st = srv.Status()
		}
		out = append(out, st)
	}
	return out
}

// reload applies a new configuration (SIGHUP). A file that does not load
// is refused and the running configuration keeps serving. [log] and the
// [[ptp]]/[[ntp]] tables change live (a changed table's port is re-opened,
// the others are not touched); [gnss], [clock] and [status] need a
// restart, which is logged.
func (d *Daemon) reload(ctx context.Context) {
	if d.Reload == nil {
		return
	}
	cfg, err := d.Reload()
	if err != nil {
		d.log.Error("configuration reload refused; still serving the running configuration",
			"event", "reload_refused", "error", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	d.logWarnings(cfg.Warnings)
	running, restart := d.cfg.Reload(cfg, d.Caps, d.CapsNarrowed)
	// The ports the new file serves are claimed before anything changes:
	// one that another sitegm serves refuses the whole reload.
	names := running.Claims()
	if err := d.claims.Ensure(names); err != nil {
		d.log.Error("configuration reload refused; still serving the running configuration",
			"event", "reload_refused", "error", err.Error())
		return
	}
	defer d.claims.Keep(names)
	if d.Level != nil {
		if l, err := logging.ParseLevel(cfg.Log.Level); err == nil {
			d.Level.Set(l)
		}
	}
	d.cfg.Log = cfg.Log
	// Ports: keep the unchanged, stop the removed and changed, start the new.
	d.watch.Expect(cfg, time.Now())
	ptps, ntps := make([]config.PTP, len(cfg.PTP)), make([]config.NTP, len(cfg.NTP))
	for i, p := range cfg.PTP {
		ptps[i] = p.Served()
	}
	for i, n := range cfg.NTP {
		ntps[i] = n.Served()
	}
	keepP := supervise.Reconcile(d.ptps, ptps, func(ps *ptpSlot) config.PTP { return ps.cfg }, func(ps *ptpSlot) {
		ps.slot.Stop()
		d.log.Log(ctx, event.Notice, "PTP port stopped (configuration)", "event", "ptp_port_removed", "ptp_interface", ps.cfg.Interface)
	}, func(p config.PTP) *ptpSlot { return &ptpSlot{cfg: p} })
	keepN := supervise.Reconcile(d.ntps, ntps, func(ns *ntpSlot) config.NTP { return ns.cfg }, func(ns *ntpSlot) {
		ns.slot.Stop()
		d.log.Log(ctx, event.Notice, "NTP stopped (configuration)", "event", "ntp_removed", "ntp_interface", ns.cfg.Interface)
	}, func(n config.NTP) *ntpSlot { return &ntpSlot{cfg: n} })
	d.ptps, d.ntps = keepP, keepN
	d.cfg.PTP, d.cfg.NTP = cfg.PTP, cfg.NTP
	d.openSlaves() // a new port's own PHC
	d.openNTS()    // a table that turned NTS on
	d.startServers(ctx)
	d.publishGM()
	msg := "configuration reloaded"
	if len(restart) > 0 {
		msg += "; changes to " + strings.Join(restart, ", ") + " take effect at the next restart"
		d.log.Warn(msg, "event", "reloaded", "needs_restart", strings.Join(restart, " "))
		return
	}
	d.log.Log(ctx, event.Notice, msg, "event", "reloaded")
}

// upstreamsTick hands the discipline the upstreams' selection (each
// second): while GNSS leads it cross-checks GNSS; while the upstreams
// lead (the fallback, or no receiver) it is their servo's sample.
func (d *Daemon) upstreamsTick() {
	if d.upstreams.Len() == 0 {
		return
	}
	cnow, ok := d.clockNow()
	if !ok {
		return // nothing is steered on a clock that cannot be read
	}
	utc, _ := cnow.UTC()
	sel, fresh := d.upstreams.Select(utc)
	d.selection = sel
	// The selection's times are UTC; the discipline's are the clock's.
	toClock := cnow.Clock().Sub(utc)
	u := discipline.Upstreams{OK: sel.OK, At: sel.At.Add(toClock), Offset: sel.Offset, RootDist: sel.RootDist, Jitter: sel.Jitter,
		Stratum: sel.Stratum, RefID: sel.RefID, RootDelay: sel.RootDelay, Poll: sel.Poll}
	d.do(d.disc.Upstream(cnow.Clock(), u, fresh))
}
