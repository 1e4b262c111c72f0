package daemon

import (
	"context"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"sitegm/internal/config"
	"sitegm/internal/logging"
	"sitegm/ptp"
	v1 "sitegm/ptp/v1"
)

// gmPair is what the PTP ports advertise, published by the main loop.
type gmPair struct {
	v2 ptp.GM
	v1 v1.GM
}

// slot is one [[ptp]] or [[ntp]] table being served: its goroutine can be
// stopped on its own (SIGHUP with a changed table).
type slot struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *slot) stop() {
	s.cancel()
	<-s.done
}

// start runs serve for one table under its own context.
func start(parent context.Context, wg *sync.WaitGroup, serve func(ctx context.Context)) slot {
	ctx, cancel := context.WithCancel(parent)
	s := slot{cancel: cancel, done: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.done)
		serve(ctx)
	}()
	return s
}

// watchInterface cancels cancel when iface disappears or is re-created
// with another index (a VLAN interface deleted and added again): sockets
// bound to the old device would never see traffic again. An interface
// that only goes down and up keeps its index, its sockets and their
// multicast memberships (the kernel sends the IGMP reports again when it
// comes up), and its addresses may change freely: sitegm binds to the
// device, not to an address. Such a bounce is still reported through
// link(up) (a pulled cable or a switch port going down is the first thing
// a site engineer wants to see).
func watchInterface(ctx context.Context, iface string, cancel func(why string), link func(up bool)) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return
	}
	linkUp := func(i *net.Interface) bool { return i.Flags&net.FlagUp != 0 && i.Flags&net.FlagRunning != 0 }
	wasUp := linkUp(ifi)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := net.InterfaceByName(iface)
		switch {
		case err != nil:
			cancel("the interface disappeared")
			return
		case now.Index != ifi.Index:
			cancel("the interface was re-created")
			return
		case linkUp(now) != wasUp:
			wasUp = !wasUp
			link(wasUp)
		}
	}
}

// keepServing keeps one table served: it waits for the interface to exist
// (logging once what is missing), serves it, and starts again when the
// interface goes away and comes back. open prepares a server (an error
// means: not yet) and returns its run function; kind names the logs'
// events ("ptp", "ntp").
func (d *Daemon) keepServing(ctx context.Context, kind, iface string, open func() (func(context.Context) error, error)) {
	warned := false
	for ctx.Err() == nil {
		run, err := open()
		if err == nil {
			sctx, cancel := context.WithCancel(ctx)
			go watchInterface(sctx, iface, func(why string) {
				d.log.Warn(strings.ToUpper(kind)+" interface changed; serving it again", "event", kind+"_interface_lost",
					kind+"_interface", iface, "reason", why)
				cancel()
			}, func(up bool) {
				if up {
					d.log.Info(strings.ToUpper(kind)+" interface link up", "event", kind+"_link_up", kind+"_interface", iface)
				} else {
					d.log.Warn(strings.ToUpper(kind)+" interface link down: nothing is served on it until it is up", "event", kind+"_link_down", kind+"_interface", iface)
				}
			})
			err = run(sctx)
			cancel()
			if err == nil {
				warned = false
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !warned {
			d.log.Warn(strings.ToUpper(kind)+" not served yet; retrying", "event", kind+"_waiting", kind+"_interface", iface, "error", err.Error())
			warned = true
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
}

// runPTP keeps one [[ptp]] port served.
func (d *Daemon) runPTP(ctx context.Context, ps *ptpSlot) {
	d.keepServing(ctx, "ptp", ps.cfg.Interface, func() (func(context.Context) error, error) {
		srv, err := newPTPServer(ps.cfg, d.tb, d.log)
		if err != nil {
			return nil, err
		}
		if g := d.gmLatest.Load(); g != nil {
			srv.setGM(g.v2, g.v1)
		}
		return func(c context.Context) error {
			ps.srv.Store(srv)
			defer ps.srv.Store(nil)
			return srv.run(c)
		}, nil
	})
}

// runNTP keeps one [[ntp]] interface served.
func (d *Daemon) runNTP(ctx context.Context, ns *ntpSlot) {
	d.keepServing(ctx, "ntp", ns.cfg.Interface, func() (func(context.Context) error, error) {
		if _, err := net.InterfaceByName(ns.cfg.Interface); err != nil {
			return nil, err
		}
		srv := newNTPServer(ns.cfg, d.tb, &d.ntpView, d.log)
		return func(c context.Context) error {
			ns.srv.Store(srv)
			defer ns.srv.Store(nil)
			return srv.run(c)
		}, nil
	})
}

// startServers starts every table of cfg that is not running yet.
func (d *Daemon) startServers(ctx context.Context) {
	for _, ps := range d.ptps {
		if ps.slot.cancel == nil {
			ps.slot = start(ctx, &d.servers, func(c context.Context) { d.runPTP(c, ps) })
		}
	}
	for _, ns := range d.ntps {
		if ns.slot.cancel == nil {
			ns.slot = start(ctx, &d.servers, func(c context.Context) { d.runNTP(c, ns) })
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
	for _, ns := range d.ntps {
		if s := ns.srv.Load(); s == nil || !s.serving.Load() {
			return false
		}
	}
	return true
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
	// The ports the new file serves are claimed before anything changes:
	// one that another sitegm serves refuses the whole reload.
	names := claimNames(d.cfg.Status, d.cfg.GNSS, cfg.PTP, cfg.NTP)
	if err := d.claims.Ensure(names); err != nil {
		d.log.Error("configuration reload refused; still serving the running configuration",
			"event", "reload_refused", "error", err.Error())
		return
	}
	defer d.claims.Keep(names)
	var restart []string
	for name, same := range map[string]bool{
		"gnss":   reflect.DeepEqual(cfg.GNSS, d.cfg.GNSS),
		"clock":  reflect.DeepEqual(cfg.Clock, d.cfg.Clock),
		"status": reflect.DeepEqual(cfg.Status, d.cfg.Status),
	} {
		if !same {
			restart = append(restart, "["+name+"]")
		}
	}
	running := cfg
	running.Clock = d.cfg.Clock // [clock] changes wait for the restart anyway
	if missing := neededCaps(running) &^ d.caps; d.capsNarrowed && missing != 0 {
		// Dropped at start for good: the port that needs it waits.
		restart = append(restart, "capabilities ("+missing.String()+")")
	}
	if d.Level != nil {
		if l, err := logging.ParseLevel(cfg.Log.Level); err == nil {
			d.Level.Set(l)
		}
	}
	d.cfg.Log = cfg.Log
	// Ports: keep the unchanged, stop the removed and changed, start the new.
	keepP := reconcile(d.ptps, cfg.PTP, func(ps *ptpSlot) config.PTP { return ps.cfg }, func(ps *ptpSlot) {
		ps.slot.stop()
		d.log.Log(ctx, logging.LevelNotice, "PTP port stopped (configuration)", "event", "ptp_port_removed", "ptp_interface", ps.cfg.Interface)
	}, func(p config.PTP) *ptpSlot { return &ptpSlot{cfg: p} })
	keepN := reconcile(d.ntps, cfg.NTP, func(ns *ntpSlot) config.NTP { return ns.cfg }, func(ns *ntpSlot) {
		ns.slot.stop()
		d.log.Log(ctx, logging.LevelNotice, "NTP stopped (configuration)", "event", "ntp_removed", "ntp_interface", ns.cfg.Interface)
	}, func(n config.NTP) *ntpSlot { return &ntpSlot{cfg: n} })
	d.ptps, d.ntps = keepP, keepN
	d.cfg.PTP, d.cfg.NTP = cfg.PTP, cfg.NTP
	d.startServers(ctx)
	d.publishGM()
	msg := "configuration reloaded"
	if len(restart) > 0 {
		msg += "; changes to " + strings.Join(restart, ", ") + " take effect at the next restart"
		d.log.Warn(msg, "event", "reloaded", "needs_restart", strings.Join(restart, " "))
		return
	}
	d.log.Log(ctx, logging.LevelNotice, msg, "event", "reloaded")
}

// reconcile keeps the slots whose configuration is still wanted, stops
// the others (a changed section counts as removed and added), and adds a
// slot for each wanted configuration no kept slot serves.
func reconcile[C any, S any](slots []S, want []C, cfgOf func(S) C, stop func(S), add func(C) S) []S {
	var keep []S
	for _, s := range slots {
		if slices.ContainsFunc(want, func(c C) bool { return reflect.DeepEqual(c, cfgOf(s)) }) {
			keep = append(keep, s)
		} else {
			stop(s)
		}
	}
	for _, c := range want {
		if !slices.ContainsFunc(keep, func(s S) bool { return reflect.DeepEqual(cfgOf(s), c) }) {
			keep = append(keep, add(c))
		}
	}
	return keep
}

// notify tells systemd the state: READY=1 once every configured port is
// served (or after 10 s, with the waiting ones named in STATUS), STATUS=
// the one-line summary, WATCHDOG=1 from the main loop.
func (d *Daemon) notify(s *Status) {
	if !d.ready.Load() && (d.allServing() || time.Since(d.started) > 10*time.Second) {
		d.ready.Store(true)
		s.Ready = true
		sdNotify("READY=1\nSTATUS=" + s.Summary)
		d.log.Info("serving", "event", "ready", "summary", s.Summary)
		return
	}
	sdNotify("STATUS=" + s.Summary)
}
