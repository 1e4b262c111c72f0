package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"sitegm/internal/config"
	"sitegm/internal/status"
)

// cmdStatus asks the running daemon over its status socket.
func cmdStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	path := fs.String("c", defaultConfig, "configuration file (for the socket path)")
	sock := fs.String("socket", "", "status socket (default: [status] socket of the configuration)")
	asJSON := fs.Bool("json", false, "print the daemon's JSON document (stable for scripts)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sock == "" {
		*sock = config.Default().Status.Socket
		if cfg, err := config.Load(*path); err == nil {
			*sock = cfg.Status.Socket
		}
	}
	c, err := net.DialTimeout("unix", *sock, 2*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sitegm status: %v (is sitegm running? --socket names another socket)\n", err)
		return 1
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	raw, err := io.ReadAll(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitegm status:", err)
		return 1
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	var s status.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		fmt.Fprintln(os.Stderr, "sitegm status: bad answer:", err)
		return 1
	}
	fmt.Print(formatStatus(&s))
	return 0
}

// formatStatus is the compact human table.
func formatStatus(s *status.Status) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "sitegm %s  up %s  %s\n\n", s.Version, (time.Duration(s.Uptime) * time.Second).Round(time.Second), s.Summary)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	g := s.GNSS
	age := "never"
	if g.LastReportAgeS >= 0 {
		age = (time.Duration(g.LastReportAgeS*1e3) * time.Millisecond).Round(100 * time.Millisecond).String()
	}
	if g.State == "none" {
		fmt.Fprintf(w, "GNSS\tnone configured: the NTP upstreams are the reference\n")
	} else {
		fmt.Fprintf(w, "GNSS\t%s\tfix %s\t%d sats\tlast report %s ago\tPPS %s\n", g.State, g.Fix, g.Satellites, age, okStr(g.PPSOK))
	}
	if g.Antenna != "unknown" || g.Jamming != "unknown" || g.Spoofing != "unknown" || g.TimeAccuracyNS > 0 || g.Survey != nil {
		acc := "unknown"
		if g.TimeAccuracyNS > 0 {
			acc = time.Duration(g.TimeAccuracyNS).String()
		}
		jam := g.Jamming
		if g.JammingIndicator >= 0 {
			jam += fmt.Sprintf(" (%d/255)", g.JammingIndicator)
		}
		fmt.Fprintf(w, "receiver\tantenna %s\tjamming %s\tspoofing %s\ttime accuracy %s\n", g.Antenna, jam, g.Spoofing, acc)
	}
	if r := g.Receiver; r != nil {
		fmt.Fprintf(w, "model\t%s\tfirmware %s\thardware %s\tprotocol %s\n", orUnknown(r.Module), orUnknown(r.Firmware), orUnknown(r.Hardware), orUnknown(r.Protocol))
	}
	if g.PPSWidthNS > 0 {
		fmt.Fprintf(w, "pulse\twidth %s (measured)\n", time.Duration(g.PPSWidthNS).Round(time.Microsecond))
	}
	if sv := g.Survey; sv != nil {
		state := "in progress"
		switch {
		case sv.Valid && !sv.Active:
			state = "done"
		case !sv.Active:
			state = "off"
		}
		fmt.Fprintf(w, "survey-in\t%s\t%s\t±%.3f m\t%d observations\n", state, (time.Duration(sv.DurationS) * time.Second).String(), sv.MeanAccM, sv.Observations)
	}
	if g.CableDelayNS != 0 || g.PPSOffsetNS != 0 {
		fmt.Fprintf(w, "pulse delays\tcable %s\toffset %s\ttaken off every edge\n", time.Duration(g.CableDelayNS), time.Duration(g.PPSOffsetNS))
	}
	if g.Distrusted != "" {
		fmt.Fprintf(w, "distrusted\t%s: the clock holds over\n", g.Distrusted)
	}
	cl := s.Clock
	est := "unknown"
	if cl.EstErrorNS >= 0 {
		est = time.Duration(cl.EstErrorNS).String()
	}
	fmt.Fprintf(w, "clock\t%s\tclass %d\toffset %s\tfreq %+.3f ppb\test. error %s\t%s\n", cl.State, cl.ClockClass,
		time.Duration(cl.OffsetNS), cl.FrequencyPPB, est, cl.Name)
	if cl.Reference != "" {
		ref := cl.Reference
		if cl.Joining {
			ref += " (took the clock over; slewing onto it)"
		}
		fmt.Fprintf(w, "reference\t%s\t%d changes\n", ref, cl.ReferenceChanges)
	}
	for _, sp := range cl.SlavePHCs {
		line := fmt.Sprintf("slave PHC\t%s\t%s\toffset %s\tbound %s\tfreq %+.3f ppb\t%d steps", sp.Device, sp.State,
			time.Duration(sp.OffsetNS), time.Duration(sp.BoundNS), sp.FrequencyPPB, sp.Steps)
		if sp.Failures > 0 {
			line += fmt.Sprintf("\t%d failures (last: %s)", sp.Failures, sp.LastError)
		}
		fmt.Fprintln(w, line)
	}
	if cl.State == "HOLDOVER" {
		fmt.Fprintf(w, "holdover\t%s elapsed\t%s remaining\n", time.Duration(cl.HoldoverElapsedS*1e9).Round(time.Second),
			time.Duration(cl.HoldoverRemainingS*1e9).Round(time.Second))
	}
	if lp := s.Leap; lp.Source != "" {
		exp := "no expiry"
		switch {
		case lp.Expired:
			exp = "EXPIRED " + lp.Expires
		case lp.Expires != "":
			exp = fmt.Sprintf("expires %s (%d days)", lp.Expires, lp.DaysLeft)
		}
		known := "TAI-UTC known"
		if !lp.Known {
			known = "TAI-UTC NOT known: PTP time not traceable"
		}
		fmt.Fprintf(w, "leap table\t%s\t%s\tTAI-UTC %d s\t%s\n", lp.Source, exp, lp.TAIUTC, known)
	}
	rate := func(kind, iface string) string {
		for _, r := range s.Rates {
			if r.Kind == kind && r.Interface == iface {
				return fmt.Sprintf("%.1f/s", r.PerSecond)
			}
		}
		return "-"
	}
	for _, p := range s.PTP {
		v1 := "v1 off"
		if p.V1 != nil {
			v1 = fmt.Sprintf("v1 %s %s dreq %s", p.V1.Subdomain, p.V1.State, rate("ptpv1", p.Interface))
		}
		stamps := p.Timestamping
		if p.PHC != "" && p.PHC != cl.Name {
			stamps += " (slave " + p.PHC + ")"
		}
		fmt.Fprintf(w, "PTP %s\t%s\t%s domain %d\t%s\t%s stamps\tdreq %s\t%s\n", p.Interface, p.State, p.Profile, p.Domain,
			p.Transport, stamps, rate("ptp", p.Interface), v1)
		if p.IngressLatencyNS != 0 || p.EgressLatencyNS != 0 {
			fmt.Fprintf(w, "\tlatencies\tingress %s\tegress %s\n", time.Duration(p.IngressLatencyNS), time.Duration(p.EgressLatencyNS))
		}
		for _, f := range p.Foreign {
			fmt.Fprintf(w, "\tforeign master\t%s\n", f)
		}
		if m := p.Master; m != nil {
			judged := "within the limit " + time.Duration(m.LimitNS).String()
			switch {
			case m.LimitNS == 0:
				judged = "not judged (an accuracy unknown, or this clock not locked)"
			case m.Off:
				judged = "OFF: beyond the limit " + time.Duration(m.LimitNS).String() + ": one of the two is wrong"
			}
			fmt.Fprintf(w, "\tmeasured master\t%s\tthis clock minus it %s\tdelay %s\t%s\n", m.Master,
				time.Duration(m.OffsetNS), time.Duration(m.DelayNS), judged)
		}
		if p.V1 != nil {
			for _, f := range p.V1.Foreign {
				fmt.Fprintf(w, "\tforeign v1 master\t%s\n", f)
			}
		}
	}
	for _, n := range s.NTP {
		fmt.Fprintf(w, "NTP %s\t%s\tport %d\t%s\tKoD %d\trate-dropped %d\tinterleaved %d\tsend lag %s\n", n.Interface, n.State, n.Port,
			rate("ntp", n.Interface), n.KoD, n.RateDropped, n.Interleaved, time.Duration(n.SendLagNS))
		if n.NTS {
			fmt.Fprintf(w, "\tNTS\t%d answered\t%d NAKs\t%d bad\tNTS-KE %d sessions, %d refused, %d failed, %d shed\n",
				n.NTSAnswered, n.NTSNAKs, n.NTSBad, n.KESessions, n.KERefused, n.KEFailed, n.KEShed)
		}
	}
	for _, m := range s.Monitors {
		state := "ok"
		switch {
		case m.Off && m.Peer:
			state = "OFF: more than both grandmasters' error bounds (" + time.Duration(m.WarnNS).String() + "): one of the two is wrong"
		case m.Off:
			state = "OFF (warn " + time.Duration(m.WarnNS).String() + ")"
		case !m.Reachable && m.Polls > 0:
			state = "unreachable: " + m.LastError
		case m.Answers == 0:
			state = "not polled yet"
		case !m.Compared:
			state = "sitegm not locked yet"
		}
		off := "-"
		if m.Answers > 0 {
			off = fmt.Sprintf("offset %s\tdelay %s\tstratum %d", time.Duration(m.OffsetNS), time.Duration(m.DelayNS), m.Stratum)
		}
		name := m.Name
		if m.Peer {
			name += " (peer grandmaster)"
		}
		fmt.Fprintf(w, "monitor %s\t%s\t%s\t%s\n", name, m.Host, off, state)
	}
	for _, u := range s.Upstreams {
		off := "-"
		if u.State != "unusable" {
			off = fmt.Sprintf("offset %s\tdelay %s\tdistance %s", time.Duration(u.OffsetNS), time.Duration(u.DelayNS), time.Duration(u.RootDistNS))
		}
		ts := ""
		if u.Timestamps != "" {
			ts = u.Timestamps + " timestamps"
		}
		fmt.Fprintf(w, "upstream %s\t%s\tstratum %d\treach %03o\tpoll %ds\t%s\t%s\t%s\n", u.Name, u.State, u.Stratum, u.Reach, u.PollS, off, ts, u.LastError)
	}
	if sel := s.Selection; sel != nil {
		verdict := "agrees"
		if s.Clock.Reference == "NTP" {
			verdict = "they discipline the clock"
		}
		if sel.Disagree {
			verdict = "DISAGREES: GNSS not followed, time not served as synchronized"
		}
		fmt.Fprintf(w, "NTP check\tupstreams minus clock %s\t±%s\t%d agree (best %s)\t%s\n", time.Duration(sel.OffsetNS),
			time.Duration(sel.RootDistNS), sel.Survivors, sel.Best, verdict)
	}
	if len(s.FollowerCounts) > 0 {
		var parts []string
		for _, c := range s.FollowerCounts {
			parts = append(parts, fmt.Sprintf("%s %s %d", c.Kind, c.Interface, c.Active))
		}
		fmt.Fprintf(w, "followers\t%s\t(active in the last %s; --json lists them)\n", strings.Join(parts, ", "), status.ActiveWindow)
	}
	for _, l := range s.LostFollowers {
		fmt.Fprintf(w, "lost\t%s\texpected, silent\n", l)
	}
	w.Flush()
	if len(s.Followers) > 0 {
		fmt.Fprintf(&b, "\nfollowers (most recent first):\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for i, f := range s.Followers {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more (--json)\n", len(s.Followers)-20)
				break
			}
			kind := f.Kind
			if f.Version > 0 {
				kind += fmt.Sprintf(" v%d", f.Version)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d requests\tevery %s\tseen %s ago\n", kind, f.Interface, f.Identity, f.Address,
				f.Requests, time.Duration(f.IntervalS*1e9).Round(time.Millisecond), time.Duration(f.AgeS*1e9).Round(time.Second))
		}
		w.Flush()
	}
	if len(s.Rejected) > 0 {
		// What was turned away since each port opened (docs/hostile-input.md).
		keys := make([]string, 0, len(s.Rejected))
		for k := range s.Rejected {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "\nrejected or unanswerable since start:\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s\t%d\n", k, s.Rejected[k])
		}
		w.Flush()
	}
	return strings.ReplaceAll(b.String(), "\t\n", "\n")
}

func okStr(ok bool) string {
	if ok {
		return "ok"
	}
	return "missing"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
