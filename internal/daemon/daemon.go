// Package daemon is the glue of `sitegm run`: it owns every sans-I/O core
// (decoder, monitors, later the clock and the servers), feeds them from the
// I/O adapters, and logs what they report. One goroutine (Run's loop) owns
// all state; adapters talk to it over channels.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"sitegm/hw/gnss"
	"sitegm/hw/serial"
	"sitegm/internal/config"
	"sitegm/internal/version"
)

// tickEvery drives timeouts: the decoder's idle close (300 ms) and the
// monitors' silence detection.
const tickEvery = 100 * time.Millisecond

// Daemon is one running sitegm.
type Daemon struct {
	cfg  config.Config
	log  *slog.Logger
	dec  *gnss.Decoder
	gnss *GNSSMonitor
}

// New checks what the configuration needs before anything starts.
func New(cfg config.Config, log *slog.Logger) (*Daemon, error) {
	floor, err := cfg.GNSS.DateFloorTime(version.DateFloor())
	if err != nil {
		return nil, fmt.Errorf("gnss.date_floor: %w", err)
	}
	return &Daemon{
		cfg:  cfg,
		log:  log,
		dec:  gnss.NewDecoder(gnss.Options{DateFloor: floor}),
		gnss: NewGNSSMonitor(log, cfg.GNSS.Device, time.Now()),
	}, nil
}

// Run serves until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("sitegm starting", "event", "start", "version", version.BuildDate,
		"gnss_device", d.cfg.GNSS.Device, "gnss_pps", d.cfg.GNSS.PPS, "clock_discipline", d.cfg.Clock.Discipline)
	chunks, links := make(chan serial.Chunk, 64), make(chan serial.Link, 4)
	reader := &serial.Reader{Device: d.cfg.GNSS.Device, Baud: d.cfg.GNSS.Baud}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		reader.Run(ctx, chunks, links)
	}()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var status <-chan time.Time
	if iv := d.cfg.Log.StatusInterval.Duration; iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		status = t.C
	}
	for {
		select {
		case <-ctx.Done():
			<-readerDone
			d.log.Info("sitegm stopped", "event", "stop")
			return nil
		case c := <-chunks:
			d.events(d.dec.Feed(c.Data, c.At), c.At)
		case l := <-links:
			d.gnss.Link(l, time.Now())
		case now := <-tick.C:
			d.events(d.dec.Tick(now), now)
			d.gnss.Tick(now, d.dec.FramerStats().Skipped)
		case <-status:
			d.logStatus()
		}
	}
}

func (d *Daemon) events(evs []gnss.Event, at time.Time) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case gnss.Report:
			d.log.Debug("gnss report", "gnss_time", e.UTCString(), "gnss_valid", e.Valid, "gnss_fix", e.Fix.String(),
				"gnss_sats", e.Sats, "gnss_sentence", e.Sentence, "gnss_first_ns", e.FirstAt.UnixNano())
			d.gnss.Report(e, at)
		case gnss.Text:
			d.gnss.Text(e, at)
		}
	}
}

// logStatus writes the periodic status line.
func (d *Daemon) logStatus() {
	g := d.gnss.Snapshot()
	fs := d.dec.FramerStats()
	age := "never"
	if !g.LastReport.IsZero() {
		age = time.Since(g.LastReport).Round(100 * time.Millisecond).String()
	}
	d.log.Info("status", "event", "status",
		"gnss_state", string(g.State), "gnss_fix", g.Fix, "gnss_sats", g.Sats, "gnss_time", g.LastTime,
		"gnss_last_report_age", age, "gnss_reports", g.Reports, "gnss_valid_reports", g.Valid,
		"gnss_sentences", fs.NMEA, "gnss_rejected_bytes", fs.Skipped,
		"gnss_checksum_errors", fs.Rejects[gnss.RejectNMEAChecksum]+fs.Rejects[gnss.RejectUBXChecksum])
}
