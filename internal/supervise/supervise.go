// Package supervise keeps servers running: each [[ptp]] or [[ntp]] table
// in a goroutine of its own that waits for its interface, serves it, and
// serves it again when the interface is re-created (hw/nic.Watch); a
// reload stops only the tables that changed.
package supervise

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"sitegm/hw/nic"
)

// Slot is one [[ptp]] or [[ntp]] table being served: its goroutine can be
// stopped on its own (SIGHUP with a changed table).
type Slot struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop cancels the table's context and waits for its goroutine.
func (s *Slot) Stop() {
	s.cancel()
	<-s.done
}

// Start runs serve for one table under its own context, counted in wg.
func Start(parent context.Context, wg *sync.WaitGroup, serve func(ctx context.Context)) Slot {
	ctx, cancel := context.WithCancel(parent)
	s := Slot{cancel: cancel, done: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.done)
		serve(ctx)
	}()
	return s
}

// Started reports whether Start made s.
func (s *Slot) Started() bool { return s.cancel != nil }

// Keep keeps one table served: it waits for the interface to exist
// (logging once what is missing), serves it, and starts again when the
// interface goes away and comes back. open prepares a server (an error
// means: not yet) and returns its run function; kind names the logs'
// events ("ptp", "ntp").
func Keep(ctx context.Context, log *slog.Logger, kind, iface string, open func() (func(context.Context) error, error)) {
	warned := false
	for ctx.Err() == nil {
		run, err := open()
		if err == nil {
			sctx, cancel := context.WithCancel(ctx)
			go nic.Watch(sctx, iface, func(why string) {
				log.Warn(strings.ToUpper(kind)+" interface changed; serving it again", "event", kind+"_interface_lost",
					kind+"_interface", iface, "reason", why)
				cancel()
			}, func(up bool) {
				if up {
					log.Info(strings.ToUpper(kind)+" interface link up", "event", kind+"_link_up", kind+"_interface", iface)
				} else {
					log.Warn(strings.ToUpper(kind)+" interface link down: nothing is served on it until it is up", "event", kind+"_link_down", kind+"_interface", iface)
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
			log.Warn(strings.ToUpper(kind)+" not served yet; retrying", "event", kind+"_waiting", kind+"_interface", iface, "error", err.Error())
			warned = true
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
}

// Reconcile keeps the slots whose configuration is still wanted, stops
// the others (a changed section counts as removed and added), and adds a
// slot for each wanted configuration no kept slot serves.
func Reconcile[C any, S any](slots []S, want []C, cfgOf func(S) C, stop func(S), add func(C) S) []S {
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
