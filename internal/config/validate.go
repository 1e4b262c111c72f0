package config

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"sitegm/hw/serial"
	"sitegm/internal/followers"
	"sitegm/ptp"
)

func rateList() string {
	var s []string
	for _, r := range serial.RateList() {
		s = append(s, fmt.Sprint(r))
	}
	return strings.Join(s, " ")
}

// maxFileSize bounds what is read of a configuration file: the example
// with every key and its comments is 10 kB; anything past a megabyte is
// not a configuration (a log or an image written to the wrong path).
const maxFileSize = 1 << 20

// Load reads and checks the configuration file at path.
func Load(path string) (Config, error) {
	data, err := ReadLimited(path, maxFileSize)
	if err != nil {
		return Default(), Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// ReadLimited reads a whole file of at most max bytes; a larger one is an
// error, found without reading it all.
func ReadLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes: not what this file should hold", max)
	}
	return b, nil
}

// validate checks what single-key tags cannot: syntax inside strings, limits
// that depend on meaning, and combinations of keys.
func (b *binder) validate(c *Config) {
	if len(c.PTP) == 0 && len(c.NTP) == 0 {
		// An empty or truncated file parses as "all defaults": a site
		// grandmaster that serves nothing. Refused, so that a bad deploy
		// (or a reload of one) cannot take the site's time down quietly;
		// stopping the service is how to stop serving.
		b.errs = append(b.errs, Error{File: b.file, Msg: "nothing to serve: no [[ptp]] and no [[ntp]] table " +
			"(an empty or truncated file?); to stop serving time, stop the service (systemctl stop sitegm)"})
	}
	if c.GNSS.Device == "" {
		// NTP only: the upstreams are the reference, and a pulse
		// without the receiver's labels names no second.
		if len(c.Upstream) == 0 {
			b.errorf("gnss.device", "no reference: gnss.device is empty and there is no [[upstream]] (a site without an antenna needs NTP servers)")
		}
		if b.set["gnss.pps"] && c.GNSS.PPS.Kind != PPSNone {
			b.errorf("gnss.pps", "a PPS without a receiver names no second: set gnss.device or pps = \"none\"")
		}
		c.GNSS.PPS = PPSSpec{Kind: PPSNone}
	}
	if m := c.Clock.UpstreamMaxError.Duration; m < time.Millisecond || m > 1500*time.Millisecond {
		b.errorf("clock.upstream_max_error", `expected "1ms" to "1.5s" (RFC 5905's MAXDIST), got %q`, c.Clock.UpstreamMaxError.String())
	}
	if _, err := ParseDevice(c.GNSS.Device); err != nil {
		b.errorf("gnss.device", "expected a device path or tcp://HOST:PORT: %v", err)
	}
	if _, ok := serial.Rates[c.GNSS.Baud]; !ok && c.GNSS.Baud >= 300 && c.GNSS.Baud <= 4000000 {
		b.errorf("gnss.baud", "expected a standard serial rate (%s), got %d", rateList(), c.GNSS.Baud)
	}

	if c.GNSS.DateFloor != "" {
		t, err := time.Parse("2006-01-02", c.GNSS.DateFloor)
		if err != nil || t.Year() < 1999 || t.Year() > 2099 {
			b.errorf("gnss.date_floor", "expected a date YYYY-MM-DD between 1999 and 2099, got %q", c.GNSS.DateFloor)
		}
	}

	if w := c.GNSS.PPSWidth.Duration; w < time.Millisecond || w > 900*time.Millisecond {
		b.errorf("gnss.pps_width", `expected "1ms" to "900ms", got %q`, c.GNSS.PPSWidth.String())
	} else if (w - 500*time.Millisecond).Abs() <= 5*time.Millisecond {
		b.errorf("gnss.pps_width", "a pulse half a second wide has two edges nothing tells apart (a NIC stamps both); set the receiver's pulse to 100ms, got %q", c.GNSS.PPSWidth.String())
	}
	if d := c.GNSS.NMEADelay.Duration; d > 5*time.Second {
		b.errorf("gnss.nmea_delay", `expected "0s" to "5s", got %q`, c.GNSS.NMEADelay.String())
	}
	// A cable delay beyond 2 µs is 400 m of RG-58: a line amplifier or a
	// fibre link, whose delay the receiver's own compensation or a
	// measurement should give. A pulse offset beyond a millisecond is not
	// a wire but a broken setup (or a USB adapter, which pps = "none"
	// serves better).
	if d := c.GNSS.CableDelay.Duration; d < 0 || d > 2*time.Microsecond {
		b.errorf("gnss.cable_delay", `expected "0ns" to "2us" (the pulse comes that much late), got %q`, c.GNSS.CableDelay.String())
	}
	if d := c.GNSS.PPSOffset.Duration; d.Abs() > time.Millisecond {
		b.errorf("gnss.pps_offset", `expected "-1ms" to "1ms" (positive: the pulse comes that much late), got %q`, c.GNSS.PPSOffset.String())
	}
	if c.GNSS.PPS.Kind == PPSNone && c.GNSS.CableDelay.Duration+c.GNSS.PPSOffset.Duration != 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: gnss.cable_delay and gnss.pps_offset correct the pulse: with pps = \"none\" they do nothing", b.pos("gnss.cable_delay")))
	}
	if c.GNSS.PPS.Kind == PPSPHC && c.Clock.Discipline != DisciplinePHC {
		b.errorf("gnss.pps", `a PHC timestamp input needs clock.discipline = "phc" (the edge is timestamped on that clock)`)
	}
	if d := c.Clock.HoldoverMaxError.Duration; d < 100*time.Nanosecond || d > time.Second {
		b.errorf("clock.holdover_max_error", `expected "100ns" to "1s", got %q`, c.Clock.HoldoverMaxError.String())
	}
	if d := c.Clock.JumpThreshold.Duration; d < time.Microsecond || d > time.Second {
		b.errorf("clock.jump_threshold", `expected "1us" to "1s", got %q`, c.Clock.JumpThreshold.String())
	}
	if c.Clock.Servo == servoOld {
		c.Clock.Servo = ServoKalman
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: clock.servo: %q is now called %q (accepted; say %q to silence this)",
			b.pos("clock.servo"), servoOld, ServoKalman, ServoKalman))
	}
	if len(c.Clock.SlavePHCs) > 0 && c.Clock.Discipline != DisciplinePHC {
		b.errorf("clock.slave_phcs", `PHCs are slaved to a disciplined PHC: it needs discipline = "phc"`)
	}
	if len(c.Clock.SlavePHCs) > 8 {
		b.errorf("clock.slave_phcs", "at most 8 slave PHCs, got %d", len(c.Clock.SlavePHCs))
	}
	for _, p := range c.Clock.SlavePHCs {
		if p == "" || p == c.Clock.PHC {
			b.errorf("clock.slave_phcs", "%q: an interface or /dev/ptpN other than clock.phc", p)
		}
	}
	if c.Clock.Discipline == DisciplinePHC && c.Clock.PHC == "" {
		b.errorf("clock.phc", `discipline = "phc" needs the interface or /dev/ptpN of the clock`)
	}
	// Less than a minute of holdover is no holdover; more than 30 days is
	// beyond what any oscillator class this box can carry keeps within
	// microseconds.
	if h := c.Clock.Holdover.Duration; h < time.Minute || h > 30*24*time.Hour {
		b.errorf("clock.holdover", `expected a duration from "1m" to "720h", got %q`, c.Clock.Holdover.String())
	}
	if s := c.Log.StatusInterval.Duration; s != 0 && (s < time.Second || s > 24*time.Hour) {
		b.errorf("log.status_interval", `expected "0s" (off) or a duration from "1s" to "24h", got %q`, c.Log.StatusInterval.String())
	}
	// Every UDP port is served once per interface: sitegm's sockets share a
	// port with SO_REUSEPORT, and the kernel spreads unicast datagrams
	// over every socket of the port, so a second table on the same port
	// (another PTP domain, an NTP server on 319) would receive half of the
	// first one's requests and drop them. One interface serves one PTP
	// domain on the standard ports; a second domain needs ports of its own.
	type ifPort struct {
		iface string
		port  int
	}
	usedPort := map[ifPort]string{}
	claimPort := func(key, iface string, port int) {
		if other, dup := usedPort[ifPort{iface, port}]; dup {
			b.errorf(key, "interface %q port %d is already served by %s", iface, port, other)
			return
		}
		usedPort[ifPort{iface, port}] = strings.SplitN(key, ".", 2)[0]
	}
	seenL2 := map[string]int{}
	seenV1 := map[string]int{}
	for i := range c.PTP {
		b.profileDefaults(i, &c.PTP[i])
	}
	for i, p := range c.PTP {
		key := fmt.Sprintf("ptp[%d]", i)
		// A PHY's latency is tens to hundreds of ns at a gigabit (an i210
		// at 10 Mb/s: 21 µs, which its driver corrects itself); 50 µs
		// covers a media converter and a store-and-forward switch port.
		for _, l := range []struct {
			name string
			d    Duration
		}{{"ingress_latency", p.IngressLatency}, {"egress_latency", p.EgressLatency}} {
			if l.d.Duration.Abs() > 50*time.Microsecond {
				b.errorf(key+"."+l.name, `expected "-50us" to "50us", got %q`, l.d.String())
			}
		}
		if p.EventPort == p.GeneralPort {
			b.errorf(key+".general_port", "must differ from event_port (%d)", p.EventPort)
		}
		if p.Transport == TransportL2 {
			if j, dup := seenL2[p.Interface]; dup {
				b.errorf(key+".interface", "interface %q already serves PTP over Ethernet from ptp[%d]", p.Interface, j)
			}
			seenL2[p.Interface] = i
		} else {
			claimPort(key+".interface", p.Interface, p.EventPort)
			if p.GeneralPort != p.EventPort {
				claimPort(key+".interface", p.Interface, p.GeneralPort)
			}
		}
		if p.DanteV1 {
			if p.Transport != TransportUDP4 {
				b.errorf(key+".dante_v1", "PTPv1 (IEEE 1588-2002) runs over UDP/IPv4 only; set dante_v1 = false with transport = %q", p.Transport)
			}
			if j, dup := seenV1[p.Interface]; dup {
				b.errorf(key+".dante_v1", "interface %q already serves PTPv1 from ptp[%d]", p.Interface, j)
			}
			seenV1[p.Interface] = i
		}
	}
	for i, n := range c.NTP {
		key := fmt.Sprintf("ntp[%d]", i)
		claimPort(key+".interface", n.Interface, n.Port)
		if r := n.RateInterval.Duration; r != 0 && (r < 10*time.Millisecond || r > time.Hour) {
			b.errorf(key+".rate_interval", `expected "0s" (off) or a duration from "10ms" to "1h", got %q`, n.RateInterval.String())
		}
		b.checkExpect(key+".expect", followers.NTP, n.Expect)
		if n.NTS && (c.NTS.Certificate == "" || c.NTS.Key == "") {
			b.errorf(key+".nts", "NTS needs [nts] certificate and key (PEM files: the server's certificate chain and its key)")
		}
	}
	if r := c.NTS.KeyRotation.Duration; r < time.Hour || r > 30*24*time.Hour {
		b.errorf("nts.key_rotation", `expected a duration from "1h" to "720h", got %q`, c.NTS.KeyRotation.String())
	}
	for i, p := range c.PTP {
		b.checkExpect(fmt.Sprintf("ptp[%d].expect", i), followers.PTPv2, p.Expect)
	}
	if l := c.HTTP.Listen; l != "" {
		if _, err := netip.ParseAddrPort(l); err != nil {
			b.errorf("http.listen", `expected ADDRESS:PORT ("127.0.0.1:8123", "[::1]:8123", "10.0.0.2:8123") or "" (off), got %q`, l)
		}
	}
	names := map[string]int{}
	for i, m := range c.Monitor {
		key := fmt.Sprintf("monitor[%d]", i)
		if j, dup := names[m.Name]; dup && m.Name != "" {
			b.errorf(key+".name", "%q already names monitor[%d]", m.Name, j)
		}
		names[m.Name] = i
		if _, _, err := SplitHostPort(m.Host, 123); err != nil && m.Host != "" {
			b.errorf(key+".host", "expected HOST or HOST:PORT, got %q: %v", m.Host, err)
		}
		// A poll is one request: more often than every 2 s is not a
		// recorder's NTP service's to bear; less often than a day is no
		// watch.
		if iv := m.Interval.Duration; iv < 2*time.Second || iv > 24*time.Hour {
			b.errorf(key+".interval", `expected "2s" to "24h", got %q`, m.Interval.String())
		}
		if w := m.Warn.Duration; w < time.Microsecond || w > time.Hour {
			b.errorf(key+".warn", `expected "1us" to "1h", got %q`, m.Warn.String())
		}
	}
	for i, u := range c.Upstream {
		key := fmt.Sprintf("upstream[%d]", i)
		if _, _, err := SplitHostPort(u.Server, 123); err != nil && u.Server != "" {
			b.errorf(key+".server", "expected HOST or HOST:PORT, got %q: %v", u.Server, err)
		}
		if u.MaxPoll < u.MinPoll {
			b.errorf(key+".maxpoll", "must not be below minpoll (%d), got %d", u.MinPoll, u.MaxPoll)
		}
	}
	if len(c.Upstream) > maxUpstreams {
		b.errorf("upstream", "at most %d [[upstream]] tables, got %d", maxUpstreams, len(c.Upstream))
	}
	if m := c.Clock.UpstreamMargin.Duration; m < 0 || m > time.Second {
		b.errorf("clock.upstream_margin", `expected "0s" to "1s", got %q`, c.Clock.UpstreamMargin.String())
	}
	if len(c.Monitor) > maxMonitors {
		b.errorf("monitor", "at most %d [[monitor]] tables, got %d", maxMonitors, len(c.Monitor))
	}
}

// maxMonitors and maxExpect bound what the file can make sitegm poll and
// track.
const (
	maxUpstreams = 16
	maxMonitors  = 64
	maxExpect    = 256
)

func (b *binder) checkExpect(key string, kind followers.Kind, list []string) {
	if len(list) > maxExpect {
		b.errorf(key, "at most %d entries, got %d", maxExpect, len(list))
		return
	}
	for i, e := range list {
		if err := followers.ParseExpected(kind, e); err != nil {
			b.errorf(fmt.Sprintf("%s[%d]", key, i), "%v", err)
		}
	}
}

// SplitHostPort reads HOST or HOST:PORT ([V6]:PORT), with def the port
// when none is given.
func SplitHostPort(s string, def int) (host string, port int, err error) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("bad port %q", p)
		}
		return h, n, nil
	}
	if strings.ContainsAny(s, "[]/ ") || s == "" || strings.Count(s, ":") == 1 {
		return "", 0, fmt.Errorf("not a host name or address")
	}
	if strings.Contains(s, ":") {
		// Colons without a port: an IPv6 address, or nothing.
		if _, err := netip.ParseAddr(s); err != nil {
			return "", 0, fmt.Errorf("not a host name or address")
		}
	}
	return s, def, nil
}

// profileDefaults fills the keys a [[ptp]] table left out from its
// profile, and checks the ones it set against the profile's ranges.
func (b *binder) profileDefaults(i int, p *PTP) {
	prof, ok := ptp.Profiles[p.Profile]
	if !ok {
		return // the profile key itself is already an error
	}
	key := fmt.Sprintf("ptp[%d]", i)
	for _, f := range []struct {
		name string
		v    *int
		def  int
		r    ptp.Range
	}{
		{"domain", &p.Domain, prof.Domain, prof.DomainRange},
		{"log_announce_interval", &p.LogAnnounceInterval, prof.LogAnnounceInterval, prof.LogAnnounceRange},
		{"log_sync_interval", &p.LogSyncInterval, prof.LogSyncInterval, prof.LogSyncRange},
		{"log_min_delay_req_interval", &p.LogMinDelayReqInterval, prof.LogMinDelayReqInterval, prof.LogMinDelayReqRange},
		{"announce_receipt_timeout", &p.AnnounceReceiptTimeout, prof.AnnounceReceiptTimeout, prof.AnnounceTimeoutRange},
	} {
		k := key + "." + f.name
		if !b.set[k] {
			*f.v = f.def
			continue
		}
		if !f.r.Has(*f.v) {
			b.errorf(k, "the %s profile allows %s, got %d", prof.Name, f.r, *f.v)
		}
	}
	// Marking: a key set wins, then the older dscp (all three), then the
	// profile's, and Dante's for its v1 Syncs.
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"dscp_event", &p.DSCPEvent, prof.DSCPEvent},
		{"dscp_general", &p.DSCPGeneral, prof.DSCPGeneral},
		{"dscp_v1_event", &p.DSCPV1Event, ptp.DanteDSCPEvent},
	} {
		switch {
		case b.set[key+"."+f.name]:
		case b.set[key+".dscp"]:
			*f.v = p.DSCP
		default:
			*f.v = f.def
		}
	}
}
