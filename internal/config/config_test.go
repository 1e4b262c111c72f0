package config

import (
	"encoding"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sitegm/configs"
)

// The example file documents every default: parsing it must give Default()
// plus one [[ptp]] and one [[ntp]] entry holding only their defaults.
func TestExampleDocumentsDefaults(t *testing.T) {
	cfg, err := Parse("configs/sitegm.toml", configs.Example)
	if err != nil {
		t.Fatalf("example does not parse:\n%v", err)
	}
	want := Default()
	p := DefaultPTP()
	p.Interface = "eth0.10"
	want.PTP = []PTP{p}
	n := DefaultNTP()
	n.Interface = "eth0.20"
	want.NTP = []NTP{n}
	m := DefaultMonitor()
	m.Name, m.Host = "recorder", "10.0.20.10"
	want.Monitor = []Monitor{m}
	u := DefaultUpstream()
	u.Server = "10.0.99.1"
	want.Upstream = []Upstream{u}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example differs from defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestExampleMentionsEveryKey(t *testing.T) {
	// Every key of every section must appear in the example, so that the
	// example stays "every key with its default".
	ex := string(configs.Example)
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "-" || tag == "" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()) {
				walk(ft)
				continue
			}
			if !strings.Contains(ex, "\n"+tag+" = ") {
				t.Errorf("configs/sitegm.toml does not show key %q", tag)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
}

func TestDemoParses(t *testing.T) {
	cfg, err := Parse("configs/demo.toml", configs.Demo)
	if err != nil {
		t.Fatalf("demo does not parse:\n%v", err)
	}
	if cfg.Clock.Discipline != "virtual" {
		t.Errorf("demo must use the virtual clock, got %q", cfg.Clock.Discipline)
	}
}

// Issue 11 item 2: an empty file (or one truncated before its first
// [[ptp]] or [[ntp]]) is all defaults and serves nothing. It is refused,
// with what to do instead, so that neither check-config nor a reload
// accepts it; every key it leaves out still takes its default.
func TestNothingToServeRefused(t *testing.T) {
	for name, src := range map[string]string{
		"empty.toml":     "",
		"truncated.toml": "[gnss]\ndevice = \"/dev/ttyS0\"\n[clock]\ndiscipline = \"virtual\"\n",
	} {
		_, err := Parse(name, []byte(src))
		if err == nil || !strings.Contains(err.Error(), "nothing to serve") || !strings.Contains(err.Error(), "systemctl stop sitegm") {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg, err := Parse("ntp-only.toml", []byte("[[ntp]]\ninterface = \"eth1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.NTP = []NTP{DefaultNTP()}
	want.NTP[0].Interface = "eth1"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults not filled in: %+v", cfg)
	}
}

func TestAllErrorsAtOnceWithLines(t *testing.T) {
	src := `# a bad file
[gnss]
device = "/dev/ttyS0"
baud = "fast"
pps = "gps"
colour = "blue"

[clock]
discipline = "atomic"
holdover = "forever"

[[ptp]]
interface = "eth1"
domain = 200
priority1 = 128

[[ptp]]
interface = "eth1"
event_port = 70000

[log]
status_interval = 5
`
	_, err := Parse("bad.toml", []byte(src))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := []string{
		`bad.toml:4: gnss.baud: expected an integer in 300..4000000, got "fast"`,
		`bad.toml:5: gnss.pps: expected "/dev/ppsN", "phc:IFACE_OR_/dev/ptpN[:CHANNEL]", "sock:PATH" or "none", got "gps": not a PPS source`,
		`bad.toml:6: gnss.colour: unknown key; [gnss] accepts: device, baud, pps, leapfile, date_floor, pps_edge, pps_width, nmea_latency, nmea_delay, jamming_threshold, cable_delay, pps_offset`,
		`bad.toml:9: clock.discipline: expected one of "phc" | "system" | "virtual", got "atomic"`,
		`bad.toml:10: clock.holdover: expected a duration such as "250ms", "60s" or "4h", got "forever"`,
		`bad.toml:14: ptp[0].domain: the aes67 profile allows 0..127, got 200`,
		`bad.toml:17: ptp[1].dante_v1: interface "eth1" already serves PTPv1 from ptp[0]`,
		`bad.toml:18: ptp[1].interface: interface "eth1" port 320 is already served by ptp[0]`,
		`bad.toml:19: ptp[1].event_port: expected an integer in 1..65535, got 70000`,
		`bad.toml:22: log.status_interval: expected a duration such as "250ms", "60s" or "4h", got 5`,
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCrossKeyChecks(t *testing.T) {
	src := `
[clock]
discipline = "phc"
phc = ""
holdover = "10s"

[[ptp]]
interface = "eth0.10"
event_port = 3000
general_port = 3000

[[ptp]]
interface = "eth0.10"
event_port = 3000

[[ntp]]
interface = "eth0.20"
[[ntp]]
interface = "eth0.20"
`
	src += "[gnss]\nbaud = 9601\n"
	src += "[[ptp]]\ninterface = \"eth3\"\ntransport = \"l2\"\n"
	_, err := Parse("x.toml", []byte(src))
	for _, frag := range []string{
		"x.toml:21: gnss.baud: expected a standard serial rate (300 600 1200 2400 4800 9600 19200",
		`x.toml:4: clock.phc: discipline = "phc" needs`,
		`x.toml:5: clock.holdover: expected a duration from "1m" to "720h", got "10s"`,
		`x.toml:10: ptp[0].general_port: must differ from event_port (3000)`,
		`x.toml:13: ptp[1].interface: interface "eth0.10" port 3000 is already served by ptp[0]`,
		`x.toml:19: ntp[1].interface: interface "eth0.20" port 123 is already served by ntp[0]`,
		`x.toml:22: ptp[2].dante_v1: PTPv1 (IEEE 1588-2002) runs over UDP/IPv4 only; set dante_v1 = false with transport = "l2"`,
	} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("missing %q in:\n%v", frag, err)
		}
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("s.toml", []byte("[gnss]\nbaud = 9600\ndevice = \"/dev/x\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "s.toml:3: syntax:") {
		t.Errorf("got %v", err)
	}
}

func TestTablesOfWrongShape(t *testing.T) {
	_, err := Parse("w.toml", []byte("gnss = 3\nptp = \"x\"\n[[log]]\nlevel = \"info\"\n"))
	for _, frag := range []string{
		"w.toml:1: gnss: expected a table [gnss], got 3",
		"w.toml:2: ptp: expected an array of tables written [[ptp]], got \"x\"",
		"w.toml:3: log: expected a table [log], got an array of tables",
	} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("missing %q in:\n%v", frag, err)
		}
	}
}

func TestParsePPS(t *testing.T) {
	for in, want := range map[string]PPSSpec{
		"/dev/pps0":          {Kind: PPSKernel, Path: "/dev/pps0"},
		"phc:eth0":           {Kind: PPSPHC, Path: "eth0"},
		"phc:eth0.10:1":      {Kind: PPSPHC, Path: "eth0.10", Channel: 1},
		"phc:/dev/ptp1:2":    {Kind: PPSPHC, Path: "/dev/ptp1", Channel: 2},
		"sock:/run/pps.sock": {Kind: PPSSock, Path: "/run/pps.sock"},
		"none":               {Kind: PPSNone},
	} {
		got, err := ParsePPS(in)
		if err != nil || got != want {
			t.Errorf("ParsePPS(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "pps0", "phc:", "phc:eth0:x", "phc:eth0:99", "sock:", "phc:eth0:+1"} {
		if _, err := ParsePPS(bad); err == nil {
			t.Errorf("ParsePPS(%q) accepted", bad)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	cfg, err := Parse("ex", configs.Example)
	if err != nil {
		t.Fatal(err)
	}
	out := Format(cfg)
	back, err := Parse("formatted", []byte(out))
	if err != nil {
		t.Fatalf("formatted config does not parse: %v\n%s", err, out)
	}
	back.Warnings, cfg.Warnings = nil, nil
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip differs:\n%s", out)
	}
	if !strings.Contains(out, `holdover = "4h"`) {
		t.Errorf("durations should print short:\n%s", out)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4 * time.Hour: "4h", 90 * time.Minute: "1h30m", 60 * time.Second: "1m", 1500 * time.Millisecond: "1.5s", 0: "0s",
	} {
		if got := (Duration{d}).String(); got != want {
			t.Errorf("%v: got %q want %q", d, got, want)
		}
	}
}

// FuzzParse: no input makes the loader panic, and whatever it accepts
// formats and parses back to the same configuration.
func FuzzParse(f *testing.F) {
	f.Add(configs.Example)
	f.Add(configs.Demo)
	f.Add([]byte("[gnss]\nbaud = \"x\"\n[[ptp]]\ndomain = -1\n"))
	f.Add([]byte("a = [1,\n2]\n[b]\nc = \"\"\"\nx\n\"\"\"\n"))
	f.Add([]byte("[[ntp]]\nport = 0\n[[ntp]]\ninterface = 3\n"))
	f.Add([]byte("[[ntp]]\ninterface = \"eth0\"\n[[upstream]]\nserver = \"10.0.0.1\"\n[clock]\nupstream_max_error = \"5ms\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err != nil {
			return
		}
		back, err := Parse("formatted", []byte(Format(cfg)))
		if err != nil {
			t.Fatalf("accepted config does not re-parse: %v", err)
		}
		back.Warnings, cfg.Warnings = nil, nil // an old name is written back new
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip differs")
		}
	})
}

func TestRequiredKeys(t *testing.T) {
	_, err := Parse("r.toml", []byte("[log]\nlevel = \"info\"\n\n[[ntp]]\nport = 123\n"))
	if err == nil || err.Error() != "r.toml:4: ntp[0].interface: missing: this key is required here" {
		t.Errorf("got %v", err)
	}
}

func TestLatencyWindow(t *testing.T) {
	for _, ok := range []string{"0s..990ms", "1s..1.9s", "100ms..800ms"} {
		if _, _, err := ParseLatency(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0s..1s", "1s", "500ms..200ms", "x..1s", "4.5s..6s"} {
		if _, _, err := ParseLatency(bad); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	_, err := Parse("l.toml", []byte("[gnss]\nnmea_latency = \"0s..1.5s\"\npps = \"phc:eth0\"\n[clock]\ndiscipline = \"virtual\"\n"))
	for _, frag := range []string{"l.toml:2: gnss.nmea_latency: expected a window \"LO..HI\" such as \"0s..990ms\", got \"0s..1.5s\": the window must be shorter than a second",
		"l.toml:3: gnss.pps: a PHC timestamp input needs clock.discipline = \"phc\""} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("missing %q in %v", frag, err)
		}
	}
}

// A profile fills in the keys a [[ptp]] table leaves out and bounds the
// ones it sets (AES67-2018 Annex A; SMPTE ST 2059-2:2021 clause 6).
func TestPTPProfiles(t *testing.T) {
	cfg, err := Parse("p.toml", []byte(`
[[ptp]]
interface = "a"
profile = "smpte2059-2"
[[ptp]]
interface = "b"
[[ptp]]
interface = "c"
profile = "default"
log_sync_interval = 1
`))
	if err != nil {
		t.Fatal(err)
	}
	type iv struct{ dom, ann, sync, mdr, rto int }
	got := func(p PTP) iv {
		return iv{p.Domain, p.LogAnnounceInterval, p.LogSyncInterval, p.LogMinDelayReqInterval, p.AnnounceReceiptTimeout}
	}
	for i, want := range []iv{{127, -2, -3, -3, 3}, {0, 1, -3, -3, 3}, {0, 1, 1, 0, 3}} {
		if g := got(cfg.PTP[i]); g != want {
			t.Errorf("ptp[%d] (%s): got %+v want %+v", i, cfg.PTP[i].Profile, g, want)
		}
	}
	_, err = Parse("p.toml", []byte(`
[[ptp]]
interface = "a"
log_sync_interval = 2
log_announce_interval = 5
announce_receipt_timeout = 1
`))
	for _, want := range []string{
		"p.toml:4: ptp[0].log_sync_interval: the aes67 profile allows -4..1, got 2",
		"p.toml:5: ptp[0].log_announce_interval: the aes67 profile allows 0..4, got 5",
		"p.toml:6: ptp[0].announce_receipt_timeout: the aes67 profile allows 2..10, got 1",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing error %q in\n%v", want, err)
		}
	}
}

// The configuration shown in docs/site-setup.md is valid.
func TestSiteSetupExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../docs/site-setup.md")
	if err != nil {
		t.Skip("docs not found:", err)
	}
	// Each toml block is a whole configuration, or (one that serves
	// nothing) an addition to the first.
	var blocks []string
	var cur []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case l == "```toml":
			in, cur = true, nil
		case l == "```" && in:
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, l)
		}
	}
	if len(blocks) == 0 {
		t.Fatal("no toml block in docs/site-setup.md")
	}
	for i, blk := range blocks {
		if !strings.Contains(blk, "[[ptp]]") && !strings.Contains(blk, "[[ntp]]") {
			blk = blocks[0] + "\n" + blk
		}
		if _, err := Parse("docs/site-setup.md", []byte(blk)); err != nil {
			t.Errorf("the site-setup example %d does not parse:\n%v", i+1, err)
		}
	}
}

// A file that is far too large for a configuration is refused without
// being read whole.
func TestLoadBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.toml")
	f, _ := os.Create(p)
	f.Truncate(200 << 20)
	f.Close()
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("200 MB file: %v", err)
	}
}

// Typed settings: an enum is checked once against its names, a parsed
// setting (gnss.pps, gnss.nmea_latency) is parsed once, and the old name
// of the Kalman servo is accepted with a warning that names the line.
func TestTypedSettings(t *testing.T) {
	cfg, err := Parse("t.toml", []byte("[gnss]\npps = \"phc:eth1:2\"\nnmea_latency = \"100ms..600ms\"\n[clock]\nservo = \"sitegm\"\n[[ntp]]\ninterface = \"lo\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GNSS.PPS != (PPSSpec{Kind: PPSPHC, Path: "eth1", Channel: 2}) || cfg.GNSS.NMEALatency != (Latency{100 * time.Millisecond, 600 * time.Millisecond}) {
		t.Errorf("parsed %+v %+v", cfg.GNSS.PPS, cfg.GNSS.NMEALatency)
	}
	if cfg.Clock.Servo != ServoKalman || len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0], "t.toml:5: clock.servo:") {
		t.Errorf("servo %q warnings %q", cfg.Clock.Servo, cfg.Warnings)
	}
	if _, err := Parse("u.toml", []byte("[clock]\ndiscipline = \"atomic\"\n[[ntp]]\ninterface = \"lo\"\n")); err == nil ||
		!strings.Contains(err.Error(), `u.toml:2: clock.discipline: expected one of "phc" | "system" | "virtual", got "atomic"`) {
		t.Errorf("enum error: %v", err)
	}
}

// The [http], [[monitor]] and expect keys: what a file gets wrong is
// named with its key.
func TestWatchKeys(t *testing.T) {
	for src, want := range map[string]string{
		"[http]\nlisten = \"8123\"\n":                                                        "http.listen",
		"[http]\nlisten = \"localhost:8123\"\n":                                              "http.listen",
		"[[monitor]]\nname = \"a\"\nhost = \"10.0.0.1:99999\"\n":                             "monitor[0].host",
		"[[monitor]]\nname = \"a\"\nhost = \"h\"\ninterval = \"100ms\"\n":                    "monitor[0].interval",
		"[[monitor]]\nname = \"a\"\nhost = \"h\"\nwarn = \"0s\"\n":                           "monitor[0].warn",
		"[[monitor]]\nname = \"a\"\nhost = \"h\"\n[[monitor]]\nname = \"a\"\nhost = \"i\"\n": "monitor[1].name",
		"[[upstream]]\nserver = \"a:b:c\"\n":                                                 "upstream[0].server",
		"[[upstream]]\nserver = \"ntp\"\nminpoll = 8\nmaxpoll = 6\n":                         "upstream[0].maxpoll",
		"[[upstream]]\nserver = \"ntp\"\nminpoll = 2\n":                                      "upstream[0].minpoll",
		"[clock]\nupstream_margin = \"2s\"\n":                                                "clock.upstream_margin",
		"[[monitor]]\nhost = \"h\"\n":                                                        "monitor[0].name",
		"[[ptp]]\ninterface = \"x\"\nexpect = [\"001dc1fffe0a0b0c\"]\n":                      "ptp[0].expect[0]",
		"[[ntp]]\ninterface = \"y\"\nexpect = [\"001dc1.fffe.0a0b0c\"]\n":                    "ntp[1].expect[0]",
	} {
		_, err := Parse("t.toml", []byte("[[ntp]]\ninterface = \"lo\"\nport = 1123\n"+src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error at %s", src, err, want)
		}
	}
	cfg, err := Parse("t.toml", []byte("[[ntp]]\ninterface = \"lo\"\nexpect = [\"10.0.1.9\"]\n[http]\nlisten = \"\"\n"+
		"[[ptp]]\ninterface = \"eth0\"\nexpect = [\"001dc1.fffe.0a0b0c-1\", \"00:1d:c1:0a:0b:0c\", \"10.0.0.5\"]\n"+
		"[[monitor]]\nname = \"nvr\"\nhost = \"nvr.site:1123\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "" || len(cfg.PTP[0].Expect) != 3 || cfg.Monitor[0].Interval.Duration != time.Minute || cfg.Monitor[0].Warn.Duration != 10*time.Millisecond {
		t.Errorf("%+v", cfg)
	}
	if h, p, err := SplitHostPort("nvr.site:1123", 123); err != nil || h != "nvr.site" || p != 1123 {
		t.Errorf("%s %d %v", h, p, err)
	}
	if h, p, err := SplitHostPort("fe80::1", 123); err != nil || h != "fe80::1" || p != 123 {
		t.Errorf("%s %d %v", h, p, err)
	}
}

// A file without a [gnss] table but with [[upstream]] servers is a site
// without an antenna; an empty device needs upstreams, and a PPS without
// a receiver is refused.
func TestNTPOnlyConfig(t *testing.T) {
	serve := "[[ntp]]\ninterface = \"eth0\"\n"
	cfg, err := Parse("t.toml", []byte(serve+"[[upstream]]\nserver = \"10.0.0.1\"\n"))
	if err != nil || cfg.GNSS.Device != "" || cfg.GNSS.PPS.Kind != PPSNone || cfg.Clock.UpstreamMaxError.Duration != 100*time.Millisecond {
		t.Fatalf("NTP only: %v %+v", err, cfg.GNSS)
	}
	// device = "" said outright is the same site.
	if cfg, err := Parse("t.toml", []byte("[gnss]\ndevice = \"\"\n"+serve+"[[upstream]]\nserver = \"10.0.0.1\"\n")); err != nil || cfg.GNSS.PPS.Kind != PPSNone {
		t.Errorf("device = \"\": %v %+v", err, cfg.GNSS)
	}
	if cfg, err := Parse("t.toml", []byte(serve)); err != nil || cfg.GNSS.Device == "" {
		t.Errorf("no [gnss] and no upstream keeps the default receiver: %v %q", err, cfg.GNSS.Device)
	}
	for in, want := range map[string]string{
		"[gnss]\ndevice = \"\"\n" + serve: "no reference",
		"[gnss]\ndevice = \"\"\npps = \"/dev/pps0\"\n" + serve + "[[upstream]]\nserver = \"a\"\n": "gnss.pps",
		serve + "[clock]\nupstream_max_error = \"2s\"\n":                                          "clock.upstream_max_error",
	} {
		if _, err := Parse("t.toml", []byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
