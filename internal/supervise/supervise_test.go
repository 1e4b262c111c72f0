package supervise

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// A reload keeps the unchanged tables, stops the removed and the changed,
// and starts the new and the changed.
func TestReconcile(t *testing.T) {
	type tab struct{ iface string }
	type slot struct{ cfg tab }
	running := []*slot{{tab{"a"}}, {tab{"b"}}, {tab{"c"}}}
	var stopped, added []string
	got := Reconcile(running, []tab{{"a"}, {"c2"}, {"d"}}, func(s *slot) tab { return s.cfg },
		func(s *slot) { stopped = append(stopped, s.cfg.iface) },
		func(c tab) *slot { added = append(added, c.iface); return &slot{c} })
	if strings.Join(stopped, ",") != "b,c" || strings.Join(added, ",") != "c2,d" {
		t.Errorf("stopped %v added %v", stopped, added)
	}
	if len(got) != 3 || got[0] != running[0] {
		t.Errorf("kept %v", got)
	}
}

// A table whose interface is not there yet is retried, logged once, and
// served when it comes; Stop ends it.
func TestKeepRetriesThenServes(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var wg sync.WaitGroup
	served := make(chan struct{})
	tries := 0
	s := Start(context.Background(), &wg, func(ctx context.Context) {
		Keep(ctx, log, "ntp", "lo", func() (func(context.Context) error, error) {
			if tries++; tries == 1 {
				return nil, errors.New("no such interface")
			}
			return func(ctx context.Context) error {
				close(served)
				<-ctx.Done()
				return nil
			}, nil
		})
	})
	if !s.Started() {
		t.Fatal("not started")
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("never served")
	}
	s.Stop()
	wg.Wait()
	if n := strings.Count(buf.String(), "event=ntp_waiting"); n != 1 {
		t.Errorf("%d ntp_waiting lines:\n%s", n, buf.String())
	}
}
