// Package logging sets up sitegm's log/slog logger: native journald entries
// with structured fields under systemd, logfmt on stderr elsewhere.
//
// Conventions every part of sitegm follows:
//   - attribute keys are lower snake case ("gnss_fix", "offset_ns"); journald
//     receives them in upper snake case (GNSS_FIX, OFFSET_NS), which is what
//     journalctl matches on;
//   - a state change is an event: logged at NOTICE (good news, expected
//     changes) or WARNING (degradation) with an "event" attribute naming it,
//     so `journalctl -u sitegm EVENT=holdover_entered` finds every one;
//   - the periodic status line is INFO.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sitegm/event"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// Identifier is the SYSLOG_IDENTIFIER of every journald entry.
const Identifier = "sitegm"

// ParseLevel maps the [log] level names to slog levels.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "notice":
		return event.Notice, nil
	case "warning", "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// LevelName is the name sitegm prints for a level.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < event.Notice:
		return "INFO"
	case l < slog.LevelWarn:
		return "NOTICE"
	case l < slog.LevelError:
		return "WARNING"
	}
	return "ERROR"
}

// Priority is the syslog priority journald stores for a level (RFC 5424
// severities: 7 debug, 6 info, 5 notice, 4 warning, 3 err).
func Priority(l slog.Level) journal.Priority {
	switch {
	case l < slog.LevelInfo:
		return journal.PriDebug
	case l < event.Notice:
		return journal.PriInfo
	case l < slog.LevelWarn:
		return journal.PriNotice
	case l < slog.LevelError:
		return journal.PriWarning
	}
	return journal.PriErr
}

// Options choose the logger.
type Options struct {
	Level  slog.Leveler // a *slog.LevelVar lets SIGHUP change it
	Target string       // "auto" | "journald" | "stderr"
	Stderr io.Writer    // default os.Stderr
}

// New returns the logger and the name of the target it chose.
//
// "auto" picks journald when stderr is already connected to the journal
// (systemd sets JOURNAL_STREAM to stderr's device:inode), or when the journal
// socket exists and stderr is not a terminal (started by a supervisor on a
// systemd machine); an operator at a terminal sees logfmt.
func New(o Options) (*slog.Logger, string) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	target := o.Target
	if target == "" || target == "auto" {
		target = "stderr"
		if onJournal, _ := journal.StderrIsJournalStream(); onJournal {
			target = "journald"
		} else if journal.Enabled() && !isTerminal(os.Stderr) {
			target = "journald"
		}
	}
	if target == "journald" {
		return slog.New(&journalHandler{level: o.Level, fallback: o.Stderr}), target
	}
	return slog.New(TextHandler(o.Stderr, o.Level)), target
}

// TextHandler is logfmt with sitegm's level names.
func TextHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				if l, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(LevelName(l))
				}
			}
			return a
		},
	})
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// journalHandler writes native journal entries (systemd's journal native
// protocol) so each attribute becomes a field journalctl can filter on.
type journalHandler struct {
	level    slog.Leveler
	prefix   string            // group prefix, upper snake, ends with "_"
	fields   map[string]string // from WithAttrs
	fallback io.Writer
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := make(map[string]string, len(h.fields)+r.NumAttrs()+2)
	for k, v := range h.fields {
		vars[k] = v
	}
	vars["SYSLOG_IDENTIFIER"] = Identifier
	r.Attrs(func(a slog.Attr) bool {
		addAttr(vars, h.prefix, a)
		return true
	})
	if err := journal.Send(r.Message, Priority(r.Level), vars); err != nil {
		// The journal went away (journald restarting): do not lose the line.
		fmt.Fprintf(h.fallback, "%s %s (journal: %v)\n", LevelName(r.Level), r.Message, err)
	}
	return nil
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.fields = make(map[string]string, len(h.fields)+len(as))
	for k, v := range h.fields {
		n.fields[k] = v
	}
	for _, a := range as {
		addAttr(n.fields, h.prefix, a)
	}
	return &n
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + FieldName(name) + "_"
	return &n
}

func addAttr(vars map[string]string, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += FieldName(a.Key) + "_"
		}
		for _, g := range a.Value.Group() {
			addAttr(vars, p, g)
		}
		return
	}
	vars[prefix+FieldName(a.Key)] = a.Value.String()
}

// FieldName turns an attribute key into a journal field name: upper case
// letters, digits and underscores, not starting with an underscore or digit
// (fields starting with "_" are reserved for journald itself).
func FieldName(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "F_" + s
	}
	if len(s) > 64 { // journald's limit on field name length
		s = s[:64]
	}
	return s
}
