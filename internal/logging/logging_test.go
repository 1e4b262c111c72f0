package logging

import (
	"bytes"
	"context"
	"log/slog"
	"sitegm/event"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"gnss_fix": "GNSS_FIX", "offsetNs": "OFFSETNS", "clock.state": "CLOCK_STATE",
		"_x": "X", "1pps": "F_1PPS", "": "F_",
	} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLevels(t *testing.T) {
	for _, c := range []struct {
		name string
		pri  journal.Priority
	}{{"debug", journal.PriDebug}, {"info", journal.PriInfo}, {"notice", journal.PriNotice},
		{"warning", journal.PriWarning}, {"error", journal.PriErr}} {
		l, err := ParseLevel(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if Priority(l) != c.pri || !strings.EqualFold(LevelName(l), c.name) {
			t.Errorf("%s: priority %d name %s", c.name, Priority(l), LevelName(l))
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("accepted unknown level")
	}
}

func TestStderrLogfmt(t *testing.T) {
	var buf bytes.Buffer
	log, target := New(Options{Level: slog.LevelInfo, Target: "stderr", Stderr: &buf})
	if target != "stderr" {
		t.Fatalf("target %s", target)
	}
	log.Log(context.Background(), event.Notice, "GNSS fix gained", "event", "gnss_fix_gained", "gnss_sats", 9)
	log.Debug("hidden")
	out := buf.String()
	if !strings.Contains(out, `level=NOTICE msg="GNSS fix gained" event=gnss_fix_gained gnss_sats=9`) || strings.Contains(out, "hidden") {
		t.Errorf("logfmt line: %q", out)
	}
}

func TestJournalFields(t *testing.T) {
	vars := map[string]string{}
	h := (&journalHandler{}).WithAttrs([]slog.Attr{slog.String("component", "gnss")}).WithGroup("ptp").(*journalHandler)
	addAttr(vars, h.prefix, slog.Group("port", slog.Int("state", 6)))
	if vars["PTP_PORT_STATE"] != "6" || h.fields["COMPONENT"] != "gnss" {
		t.Errorf("fields: %v %v", vars, h.fields)
	}
}
