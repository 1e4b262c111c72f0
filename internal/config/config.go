// Package config loads and checks sitegm's one TOML configuration file.
//
// The file is parsed with BurntSushi/toml into a generic tree, then bound to
// the Config struct by this package so that every problem in the file (an
// unknown key, a wrong type, an out-of-range value, an inconsistent
// combination) is reported at once, each with file:line, the key and what was
// expected. Operators fix a file in one pass instead of one error per restart.
package config

import (
	"fmt"
	"strings"
	"time"
)

// Config is the whole configuration. Field tags:
//
//	toml:"name"           the key in the file
//	check:"range=A..B"    an inclusive integer range
//	check:"oneof=a|b|c"   one of the listed strings
//	check:"nonempty"      a string that must not be empty
type Config struct {
	GNSS   GNSS   `toml:"gnss"`
	Clock  Clock  `toml:"clock"`
	PTP    []PTP  `toml:"ptp"`
	NTP    []NTP  `toml:"ntp"`
	Log    Log    `toml:"log"`
	Status Status `toml:"status"`
	HTTP   HTTP   `toml:"http"`
	// NTS is Network Time Security for the [[ntp]] tables that turn it on.
	NTS NTS `toml:"nts"`
	// Monitor are the hosts whose clocks sitegm watches over NTP.
	Monitor []Monitor `toml:"monitor"`
	// Upstream are NTP servers the clock GNSS disciplines is checked
	// against.
	Upstream []Upstream `toml:"upstream"`
	// Warnings are what the file says that still works but should change
	// (an old name): check-config prints them, the daemon logs them.
	Warnings []string `toml:"-"`
}

// GNSS is the receiver: where its bytes come from and where its PPS comes from.
type GNSS struct {
	// Device is a serial device path (or a pty symlink), or tcp://HOST:PORT.
	Device string `toml:"device"`
	// Baud is the serial line rate; ignored for TCP and ptys.
	Baud int `toml:"baud" check:"range=300..4000000"`
	// PPS is "/dev/ppsN", "phc:IFACE_OR_/dev/ptpN[:CHANNEL]", "sock:PATH" or "none".
	PPS PPSSpec `toml:"pps"`
	// Leapfile is an IERS/NIST leap-seconds.list.
	Leapfile string `toml:"leapfile"`
	// DateFloor is the earliest date the receiver can legitimately report
	// (YYYY-MM-DD). Dates before it are taken as a GPS week-number rollover
	// and moved forward by 1024 weeks. Empty means the build date.
	DateFloor string `toml:"date_floor"`
	// PPSEdge is the pulse edge on time: "assert" (leading) or "clear".
	PPSEdge Edge `toml:"pps_edge" check:"oneof=assert|clear"`
	// PPSWidth is the pulse's width: with a PHC's EXTTS, which stamps both
	// edges, it tells the leading edge from the trailing one.
	PPSWidth Duration `toml:"pps_width"`
	// NMEALatency is "LO..HI": when the sentences for second S start after
	// the edge of S. Shorter than a second, or pairing is ambiguous.
	NMEALatency Latency `toml:"nmea_latency"`
	// NMEADelay is, without a PPS, the fixed delay of the sentences after
	// the second they name (subtracted from their arrival).
	NMEADelay Duration `toml:"nmea_delay"`
	// JammingThreshold is the receiver's jamming indicator (UBX MON-HW /
	// MON-RF jamInd, 0..255) above which interference is reported
	// (gnss_jamming); the receiver's own warning verdict counts anyway.
	JammingThreshold int `toml:"jamming_threshold" check:"range=1..255"`
	// CableDelay is the antenna cable's delay, and PPSOffset any other
	// known lateness of the pulse where it is timestamped (a receiver's
	// published bias, a long pulse line, a level shifter); positive when
	// the pulse comes late. Both are taken off every PPS edge before it
	// is paired with its second (discipline.Config.PPSDelay).
	CableDelay Duration `toml:"cable_delay"`
	PPSOffset  Duration `toml:"pps_offset"`
}

// Clock is the one disciplined timebase.
type Clock struct {
	Discipline Discipline `toml:"discipline" check:"oneof=phc|system|virtual"`
	PHC        string     `toml:"phc"`
	DriftFile  string     `toml:"drift_file"`
	Oscillator string     `toml:"oscillator" check:"oneof=tcxo|ocxo|rubidium"`
	Holdover   Duration   `toml:"holdover"`
	// HoldoverMaxError ends holdover early when the predicted error
	// exceeds it.
	HoldoverMaxError Duration `toml:"holdover_max_error"`
	// JumpThreshold: GNSS time suddenly disagreeing by more than this (and
	// more than the noise allows) is not followed.
	JumpThreshold Duration `toml:"jump_threshold"`
	// FollowJumps: follow a new GNSS time that persisted this long; "0s"
	// never (an operator can still resync: SIGUSR1).
	FollowJumps Duration `toml:"follow_jumps"`
	// Servo is "kalman" (sitegm's) or "pi" (linuxptp's PI, for comparison
	// on site). "sitegm", its old name, is accepted with a warning.
	Servo Servo `toml:"servo" check:"oneof=kalman|pi|sitegm"`
	// SyncSystem: with discipline = "phc", slave CLOCK_REALTIME to the PHC.
	SyncSystem bool `toml:"sync_system"`
	// SlavePHCs (discipline = "phc"): more PHCs to keep on the disciplined
	// one (interface names or /dev/ptpN), besides those sitegm slaves on
	// its own: the PHC of every [[ptp]] interface that is not the
	// disciplined clock.
	SlavePHCs []string `toml:"slave_phcs"`
	// UpstreamMargin is the slack of the NTP cross-check: GNSS time
	// outside the upstreams' interval, widened by the clock's own error
	// and this, is not followed.
	UpstreamMargin Duration `toml:"upstream_margin"`
	// UpstreamMaxError is the error bound within which a clock the NTP
	// upstreams discipline (the fallback, or a site without a receiver)
	// is served as synchronized; beyond it NTP clients see LI 3.
	UpstreamMaxError Duration `toml:"upstream_max_error"`
}

// PTP is one audio interface (VLAN) served with PTPv2 and optionally PTPv1.
type PTP struct {
	Interface    string       `toml:"interface" check:"nonempty"`
	Profile      string       `toml:"profile" check:"oneof=aes67|smpte2059-2|default"`
	Domain       int          `toml:"domain" check:"range=0..255"`
	Priority1    int          `toml:"priority1" check:"range=0..255"`
	Priority2    int          `toml:"priority2" check:"range=0..255"`
	Transport    Transport    `toml:"transport" check:"oneof=udp4|l2"`
	Timestamping Timestamping `toml:"timestamping" check:"oneof=auto|hardware|software"`
	DanteV1      bool         `toml:"dante_v1"`
	// V1Subdomain and V1LogSyncInterval configure the IEEE 1588-2002 port.
	V1Subdomain       string `toml:"v1_subdomain" check:"oneof=_DFLT|_ALT1|_ALT2|_ALT3"`
	V1LogSyncInterval int    `toml:"v1_log_sync_interval" check:"range=-4..6"`
	EventPort         int    `toml:"event_port" check:"range=1..65535"`
	GeneralPort       int    `toml:"general_port" check:"range=1..65535"`
	// Intervals (log2 seconds) and the announce receipt timeout; left out,
	// they are the profile's defaults, and must lie in its ranges.
	LogAnnounceInterval    int `toml:"log_announce_interval" check:"range=-7..7"`
	LogSyncInterval        int `toml:"log_sync_interval" check:"range=-7..7"`
	LogMinDelayReqInterval int `toml:"log_min_delay_req_interval" check:"range=-7..7"`
	AnnounceReceiptTimeout int `toml:"announce_receipt_timeout" check:"range=2..255"`
	// DSCPEvent and DSCPGeneral mark PTPv2's event and general messages,
	// DSCPV1Event PTPv1's Syncs (its other messages are general); left
	// out, they are the profile's (ptp.Profiles: EF, 46) and Dante's for
	// v1 (CS7, 56). DSCP, the older key, sets all three.
	DSCP        int `toml:"dscp" check:"range=0..63"`
	DSCPEvent   int `toml:"dscp_event" check:"range=0..63"`
	DSCPGeneral int `toml:"dscp_general" check:"range=0..63"`
	DSCPV1Event int `toml:"dscp_v1_event" check:"range=0..63"`
	// MasterOnly keeps the port MASTER even when a better master is seen.
	MasterOnly bool `toml:"master_only"`
	// LockedFirst: a locked grandmaster ranks before one that is not,
	// priority1 only after (ptp.CompareLockedFirst): this port yields
	// while its clock is not locked and a locked master is heard, and
	// does not yield to an unlocked one.
	LockedFirst bool `toml:"locked_first"`
	// Expect lists the followers that should be there (clockIdentity,
	// v1 UUID or address): one silent is a ptp_follower_lost WARNING.
	Expect []string `toml:"expect"`
	// IngressLatency and EgressLatency are what the timestamps miss of a
	// message's passage through the reference plane, as ptp4l's keys of
	// the same names: the receive stamp is that much after the message
	// crossed it (subtracted from every ingress stamp), the actual
	// transmission that much after the transmit stamp (added to every
	// egress stamp). For both PTPv2 and PTPv1 on the interface. The
	// driver's own PHY correction (igb, igc) is not to be repeated here.
	IngressLatency Duration `toml:"ingress_latency"`
	EgressLatency  Duration `toml:"egress_latency"`
}

// NTP is one video interface (VLAN) served with NTP.
type NTP struct {
	Interface string `toml:"interface" check:"nonempty"`
	Port      int    `toml:"port" check:"range=1..65535"`
	// RateInterval is the average interval a client address may keep
	// between requests, RateBurst how many it may send at once ("0s"
	// turns rate limiting off).
	RateInterval Duration `toml:"rate_interval"`
	RateBurst    int      `toml:"rate_burst" check:"range=1..1000"`
	// Expect lists client addresses that should keep polling: one silent
	// is an ntp_client_lost WARNING.
	Expect []string `toml:"expect"`
	// NTS: answer NTS requests (RFC 8915) on this interface and serve
	// NTS-KE beside it ([nts]); plain requests are answered as ever.
	NTS bool `toml:"nts"`
	// Workers is how many sockets and workers answer on this interface
	// (0: one per CPU).
	Workers int `toml:"workers" check:"range=0..64"`
}

// NTS is Network Time Security (RFC 8915): the NTS-KE server's
// certificate and port, and the server keys NTS cookies are sealed under.
type NTS struct {
	// Certificate and Key are PEM files (the chain, its key) read again
	// when they change: a renewed certificate needs no restart.
	Certificate string `toml:"certificate"`
	Key         string `toml:"key"`
	// KEPort is NTS-KE's TCP port (4460, RFC 8915 4).
	KEPort int `toml:"ke_port" check:"range=1..65535"`
	// KeyFile keeps the server keys across restarts (mode 0600);
	// KeyRotation is how often a new one is made, KeysKept how many are
	// kept (a client's cookies stay valid for about KeysKept-1 rotations
	// of silence).
	KeyFile     string   `toml:"key_file" check:"nonempty"`
	KeyRotation Duration `toml:"key_rotation"`
	KeysKept    int      `toml:"keys_kept" check:"range=2..16"`
}

// HTTP is the read-only web endpoint: /metrics, the status page,
// /status.json.
type HTTP struct {
	// Listen is ADDRESS:PORT; "" turns the endpoint off.
	Listen string `toml:"listen"`
}

// Monitor is one host whose clock sitegm measures over NTP (the video
// recorder, an NVR, a camera).
type Monitor struct {
	Name string `toml:"name" check:"nonempty"`
	// Host is HOST or HOST:PORT (port 123 by default).
	Host     string   `toml:"host" check:"nonempty"`
	Interval Duration `toml:"interval"`
	// Warn is the offset beyond which the host is reported off.
	Warn Duration `toml:"warn"`
	// Peer: the host is the other grandmaster of a redundant pair; it is
	// off when the two clocks differ by more than both their error bounds
	// together (this one's, the peer's root dispersion and half its root
	// delay) plus half the measurement's delay: then one of the two is
	// wrong. Warn is not used.
	Peer bool `toml:"peer"`
}

// Log controls logging.
type Log struct {
	Level string `toml:"level" check:"oneof=debug|info|notice|warning|error"`
	// Target is where logs go: "auto" picks journald under systemd (see
	// internal/logging), "journald" or "stderr" force one.
	Target         string   `toml:"target" check:"oneof=auto|journald|stderr"`
	StatusInterval Duration `toml:"status_interval"`
}

// Status is the operator interface (sitegm status).
type Status struct {
	Socket string `toml:"socket" check:"nonempty"`
}

// Default returns the configuration used for every key a file leaves out.
// configs/sitegm.toml documents the same values; a test keeps them equal.
func Default() Config {
	return Config{
		GNSS: GNSS{
			Device:   "/dev/ttyUSB0",
			Baud:     9600,
			PPS:      PPSSpec{Kind: PPSKernel, Path: "/dev/pps0"},
			Leapfile: "/usr/share/zoneinfo/leap-seconds.list",
			PPSEdge:  EdgeAssert,
			PPSWidth: Duration{100 * time.Millisecond},
			// u-blox's own guidance: jamInd above about 100 is significant
			// CW interference.
			JammingThreshold: 100,
			NMEALatency:      Latency{0, 990 * time.Millisecond},
		},
		Clock: Clock{
			Discipline:       DisciplinePHC,
			PHC:              "eth0",
			DriftFile:        "/var/lib/sitegm/drift",
			Oscillator:       "tcxo",
			Holdover:         Duration{4 * time.Hour},
			HoldoverMaxError: Duration{100 * time.Microsecond},
			JumpThreshold:    Duration{10 * time.Microsecond},
			Servo:            ServoKalman,
			SyncSystem:       true,
			SlavePHCs:        []string{},
			// NTP over a LAN or a good ISP knows UTC to a millisecond or
			// so, and says how well (root distance); 2 ms more keeps an
			// odd path from calling good GNSS wrong.
			UpstreamMargin: Duration{2 * time.Millisecond},
			// A tenth of a second: worse, and a camera's timestamps are
			// frames off the site's other sites and logs.
			UpstreamMaxError: Duration{100 * time.Millisecond},
		},
		Log: Log{
			Level:          "info",
			Target:         "auto",
			StatusInterval: Duration{60 * time.Second},
		},
		Status: Status{Socket: "/run/sitegm/status.sock"},
		// Local only unless configured: a management address is a
		// site's choice (the page and metrics are read-only).
		HTTP: HTTP{Listen: "127.0.0.1:8123"},
		NTS:  NTS{KEPort: 4460, KeyFile: "/var/lib/sitegm/nts-keys", KeyRotation: Duration{24 * time.Hour}, KeysKept: 4},
	}
}

// Upstream is one NTP server ([[upstream]]).
type Upstream struct {
	// Server is HOST or HOST:PORT (123).
	Server string `toml:"server" check:"nonempty"`
	// MinPoll and MaxPoll bound the poll interval, log2 seconds (RFC
	// 5905: 4 to 17).
	MinPoll int  `toml:"minpoll" check:"range=4..17"`
	MaxPoll int  `toml:"maxpoll" check:"range=4..17"`
	IBurst  bool `toml:"iburst"`
	Prefer  bool `toml:"prefer"`
}

// DefaultUpstream is the starting point of every [[upstream]] table:
// polls every 64 s at first, up to 1024 s, with a burst of 4 at the start
// (chrony's and ntpd's defaults).
func DefaultUpstream() Upstream {
	return Upstream{MinPoll: 6, MaxPoll: 10, IBurst: true}
}

// DefaultMonitor is the starting point of every [[monitor]] table: a
// poll a minute (a recorder's NTP service is not a public server, and
// offsets of milliseconds drift in minutes), and a warning beyond 10 ms,
// a third of a video frame at 30 frames a second.
func DefaultMonitor() Monitor {
	return Monitor{Interval: Duration{time.Minute}, Warn: Duration{10 * time.Millisecond}}
}

// DefaultPTP is the starting point of every [[ptp]] table.
func DefaultPTP() PTP {
	return PTP{
		Profile:      "aes67",
		Priority1:    128,
		Priority2:    128,
		Transport:    TransportUDP4,
		Timestamping: TimestampingAuto,
		DanteV1:      true,
		LockedFirst:  true,
		// Dante leaders send four Syncs a second; followers expect it.
		V1Subdomain:       "_DFLT",
		V1LogSyncInterval: -2,
		EventPort:         319,
		GeneralPort:       320,
		// The aes67 profile's; validate puts in the profile's own for the
		// keys a file leaves out.
		LogAnnounceInterval:    1,
		LogSyncInterval:        -3,
		LogMinDelayReqInterval: -3,
		AnnounceReceiptTimeout: 3,
		DSCP:                   46,
		DSCPEvent:              46,
		DSCPGeneral:            46,
		DSCPV1Event:            56,
		Expect:                 []string{},
	}
}

// DefaultNTP is the starting point of every [[ntp]] table.
func DefaultNTP() NTP {
	return NTP{Port: 123, RateInterval: Duration{time.Second}, RateBurst: 16, Expect: []string{}}
}

// Duration is a time.Duration written as a Go duration string ("4h", "250ms").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration")
	}
	d.Duration = v
	return nil
}

// MarshalText writes the shortest form ("4h" rather than "4h0m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Discipline is the clock disciplined (clock.discipline).
type Discipline string

// Disciplines.
const (
	DisciplinePHC     Discipline = "phc"     // a NIC's PTP hardware clock
	DisciplineSystem  Discipline = "system"  // CLOCK_REALTIME
	DisciplineVirtual Discipline = "virtual" // a software clock over the host's (demo, tests)
)

// Servo is clock.servo.
type Servo string

// Servos.
const (
	ServoKalman Servo = "kalman" // sitegm's
	ServoPI     Servo = "pi"     // linuxptp's, the baseline
	servoOld    Servo = "sitegm" // kalman's old name
)

// Transport is a [[ptp]] table's transport.
type Transport string

// Transports.
const (
	TransportUDP4 Transport = "udp4" // UDP/IPv4 (IEEE 1588-2019 Annex C)
	TransportL2   Transport = "l2"   // Ethernet (Annex E)
)

// Timestamping is a [[ptp]] table's choice of timestamps.
type Timestamping string

// Timestamping modes.
const (
	TimestampingAuto     Timestamping = "auto"     // hardware where the NIC's PHC is the clock
	TimestampingHardware Timestamping = "hardware" // required
	TimestampingSoftware Timestamping = "software"
)

// Edge is the PPS edge on time (gnss.pps_edge).
type Edge string

// Edges.
const (
	EdgeAssert Edge = "assert" // leading
	EdgeClear  Edge = "clear"  // trailing
)

// PPSKind says where PPS edges come from.
type PPSKind string

// The PPS source kinds accepted in gnss.pps.
const (
	PPSKernel PPSKind = "kernel" // /dev/ppsN
	PPSPHC    PPSKind = "phc"    // a PHC external timestamp channel
	PPSSock   PPSKind = "sock"   // chrony/gpsd SOCK datagrams
	PPSNone   PPSKind = "none"   // NMEA only
)

// PPSSpec is gnss.pps, parsed once when the file is read.
type PPSSpec struct {
	Kind PPSKind
	// Path is the /dev/ppsN device, the socket path, or for PHC the
	// interface name or /dev/ptpN device.
	Path string
	// Channel is the PHC external timestamp channel (SDP pin index).
	Channel int
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PPSSpec) UnmarshalText(b []byte) error {
	s, err := ParsePPS(string(b))
	if err != nil {
		return err
	}
	*p = s
	return nil
}

// MarshalText implements encoding.TextMarshaler (the syntax it was read
// from).
func (p PPSSpec) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p PPSSpec) String() string {
	switch p.Kind {
	case PPSNone:
		return "none"
	case PPSSock:
		return "sock:" + p.Path
	case PPSPHC:
		return fmt.Sprintf("phc:%s:%d", p.Path, p.Channel)
	}
	return p.Path
}

// Expect says what the key takes, for error messages.
func (PPSSpec) Expect() string {
	return `"/dev/ppsN", "phc:IFACE_OR_/dev/ptpN[:CHANNEL]", "sock:PATH" or "none"`
}

// ParsePPS parses the gnss.pps syntax.
func ParsePPS(s string) (PPSSpec, error) {
	switch {
	case s == "none":
		return PPSSpec{Kind: PPSNone}, nil
	case strings.HasPrefix(s, "sock:"):
		p := strings.TrimPrefix(s, "sock:")
		if p == "" {
			return PPSSpec{}, fmt.Errorf("sock: needs a socket path")
		}
		return PPSSpec{Kind: PPSSock, Path: p}, nil
	case strings.HasPrefix(s, "phc:"):
		rest := strings.TrimPrefix(s, "phc:")
		spec := PPSSpec{Kind: PPSPHC}
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			var ch int
			if _, err := fmt.Sscanf(rest[i+1:], "%d", &ch); err != nil || ch < 0 || ch > 63 ||
				fmt.Sprint(ch) != rest[i+1:] {
				return PPSSpec{}, fmt.Errorf("phc channel %q is not a number 0..63", rest[i+1:])
			}
			spec.Channel = ch
			rest = rest[:i]
		}
		if rest == "" {
			return PPSSpec{}, fmt.Errorf("phc: needs an interface or /dev/ptpN")
		}
		spec.Path = rest
		return spec, nil
	case strings.HasPrefix(s, "/dev/"):
		return PPSSpec{Kind: PPSKernel, Path: s}, nil
	}
	return PPSSpec{}, fmt.Errorf("not a PPS source")
}

// DeviceSpec is gnss.device, parsed.
type DeviceSpec struct {
	TCP  bool
	Addr string // host:port for TCP, else the device path
}

// ParseDevice parses the gnss.device syntax.
func ParseDevice(s string) (DeviceSpec, error) {
	if s == "" {
		return DeviceSpec{}, nil // no receiver (NTP only)
	}
	if strings.HasPrefix(s, "tcp://") {
		a := strings.TrimPrefix(s, "tcp://")
		i := strings.LastIndexByte(a, ':')
		if i <= 0 || i == len(a)-1 {
			return DeviceSpec{}, fmt.Errorf("tcp:// needs HOST:PORT")
		}
		return DeviceSpec{TCP: true, Addr: a}, nil
	}
	if strings.Contains(s, "://") {
		return DeviceSpec{}, fmt.Errorf("only tcp:// is supported as a network source")
	}
	return DeviceSpec{Addr: s}, nil
}

// DateFloorTime parses gnss.date_floor, falling back to fallback when empty.
func (g GNSS) DateFloorTime(fallback time.Time) (time.Time, error) {
	if g.DateFloor == "" {
		return fallback, nil
	}
	return time.Parse("2006-01-02", g.DateFloor)
}

// Latency is gnss.nmea_latency: the window after its edge in which a
// second's sentences start.
type Latency struct{ Lo, Hi time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Latency) UnmarshalText(b []byte) error {
	lo, hi, err := ParseLatency(string(b))
	if err != nil {
		return err
	}
	*l = Latency{lo, hi}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (l Latency) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l Latency) String() string { return Duration{l.Lo}.String() + ".." + Duration{l.Hi}.String() }

// Expect says what the key takes, for error messages.
func (Latency) Expect() string { return `a window "LO..HI" such as "0s..990ms"` }

// ParseLatency parses gnss.nmea_latency, "LO..HI".
func ParseLatency(s string) (lo, hi time.Duration, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return 0, 0, fmt.Errorf("want LO..HI, e.g. \"0s..990ms\"")
	}
	if lo, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("LO: %v", err)
	}
	if hi, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
		return 0, 0, fmt.Errorf("HI: %v", err)
	}
	switch {
	case lo < 0 || hi <= lo:
		return 0, 0, fmt.Errorf("want 0 <= LO < HI")
	case hi-lo >= time.Second:
		return 0, 0, fmt.Errorf("the window must be shorter than a second, or two PPS edges fit in it")
	case hi > 5*time.Second:
		return 0, 0, fmt.Errorf("HI above 5s is not a receiver latency")
	}
	return lo, hi, nil
}
