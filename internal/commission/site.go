package commission

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The site's side: interfaces, known delays, followers, monitored hosts
// and the leap table.

func (j *judge) interfaces() {
	for _, ifc := range j.obs.Interfaces {
		id := "interface." + ifc.Name
		c := Check{ID: id + ".link", Title: "Interface " + ifc.Name + " (" + strings.Join(ifc.Roles, ", ") + ")"}
		if !ifc.Exists {
			c.Verdict, c.Figure, c.Reason = Fail, "not there", "the configuration serves an interface this box does not have"
			c.Action = "create it (docs/site-setup.md, the VLANs) or correct the configuration"
			j.add(c)
			continue
		}
		c.Figure = linkFigure(ifc)
		switch {
		case ifc.OperState != "up" && !(ifc.OperState == "unknown" && ifc.Carrier):
			c.Verdict, c.Reason, c.Action = Fail, "the link is "+ifc.OperState, "check the cable and the switch port"
		case ifc.CarrierChanges > 0:
			c.Verdict, c.Reason, c.Action = Warn, fmt.Sprintf("the link went down and up %d time(s) during the run", ifc.CarrierChanges),
				"check the cable, the switch port and power saving (EEE)"
		case ifc.Duplex == "half":
			c.Verdict, c.Reason, c.Action = Warn, "half duplex: collisions delay messages unevenly", "set the switch port to auto-negotiate"
		default:
			c.Verdict, c.Reason = Pass, "link up"
		}
		j.add(c)
		if !slices.Contains(ifc.Roles, "ptp") {
			continue
		}
		c = Check{ID: id + ".timestamping", Title: "Timestamping on " + ifc.Name}
		cap := "software only"
		if ifc.HWCapable {
			cap = "hardware (" + ifc.PHC + ")"
		}
		c.Figure = "can: " + cap + "; applied now: " + ifc.Applied
		if ifc.Timestamping != "" {
			c.Figure += "; sitegm uses: " + ifc.Timestamping
		}
		switch {
		case j.obs.Daemon && ifc.Timestamping == "hardware":
			c.Verdict, c.Reason = Pass, "sitegm's PTP messages carry the NIC's own timestamps"
		case j.obs.Daemon && ifc.HWCapable:
			c.Verdict, c.Reason = Fail, "the NIC can timestamp in hardware, yet sitegm's port uses "+orUnknown(ifc.Timestamping)
			c.Action = "set [[ptp]] timestamping = \"auto\" and see journalctl -u sitegm for why hardware stamps were refused"
		case !ifc.HWCapable:
			c.Verdict, c.Reason = Warn, "software timestamps: tens of microseconds of noise where AES67 wants one"
			c.Action = "serve PTP from a NIC with hardware timestamps (i210, i226)"
		default:
			c.Verdict, c.Reason = Pass, "the NIC can timestamp in hardware (sitegm turns it on when it serves)"
		}
		j.add(c)
		if ifc.PortState != "" {
			c = Check{ID: id + ".port", Title: "PTP port on " + ifc.Name, Figure: ifc.PortState}
			if ifc.V1State != "" {
				c.Figure += ", PTPv1 " + ifc.V1State
			}
			switch {
			case ifc.PortState == "MASTER" && (ifc.V1State == "" || ifc.V1State == "MASTER"):
				c.Verdict, c.Reason = Pass, "sitegm is the grandmaster here"
			case strings.Contains(ifc.PortState+ifc.V1State, "PASSIVE"):
				c.Verdict, c.Reason = Warn, "another clock wins the best master election on this network"
				c.Action = "if it is not the site's backup sitegm, lower sitegm's priority1 or raise the other's (docs/site-setup.md, Dante)"
			default:
				c.Verdict, c.Reason, c.Action = Fail, "sitegm does not serve PTP here", "see sitegm status and journalctl -u sitegm"
			}
			j.add(c)
		}
	}
}

func linkFigure(ifc InterfaceObs) string {
	var f []string
	f = append(f, ifc.OperState)
	if ifc.SpeedMbps > 0 {
		f = append(f, fmt.Sprintf("%d Mb/s %s duplex", ifc.SpeedMbps, ifc.Duplex))
	}
	if ifc.VLAN > 0 {
		f = append(f, fmt.Sprintf("VLAN %d on %s", ifc.VLAN, ifc.Parent))
	} else {
		f = append(f, "untagged")
	}
	if len(ifc.Addresses) > 0 {
		f = append(f, strings.Join(ifc.Addresses, " "))
	}
	return strings.Join(f, ", ")
}

func (j *judge) delays() {
	d := j.r.Delays
	if j.cfg.GNSS.Device != "" && j.cfg.GNSS.PPS.Kind != "none" {
		c := Check{ID: "delays.pulse", Title: "Pulse delays", Figure: fmt.Sprintf("cable %s, pulse offset %s", time.Duration(d.CableNS), time.Duration(d.PPSOffsetNS))}
		if d.CableNS == 0 {
			c.Verdict = Warn
			c.Reason = "no antenna cable delay is entered: unless the receiver compensates it, the time is late by about 5 ns per metre of cable"
			c.Action = "enter gnss.cable_delay (docs/hardware.md, Known delays), or confirm the receiver compensates it (sitegm gnss configure --cable-delay)"
		} else {
			c.Verdict, c.Reason = Pass, "taken off every pulse"
		}
		j.add(c)
	}
	for _, p := range d.Ports {
		j.add(Check{ID: "delays.ptp." + p.Interface, Title: "Latencies on " + p.Interface, Verdict: Pass,
			Figure: fmt.Sprintf("ingress %s, egress %s", time.Duration(p.IngressNS), time.Duration(p.EgressNS)),
			Reason: "applied to every PTP timestamp (besides what the NIC's driver corrects itself)"})
	}
}

func (j *judge) followers() {
	for _, f := range j.r.Followers {
		c := Check{ID: "follower." + f.Interface + "." + f.Name, Title: fmt.Sprintf("Expected %s follower %s on %s", strings.ToUpper(f.Kind), f.Name, f.Interface)}
		switch {
		case !f.Checked:
			c.Verdict, c.Figure, c.Reason = Warn, "not checked", "sitegm was not running: it alone sees its followers"
			c.Action = "run the commissioning with sitegm running"
		case f.LostAtEnd:
			c.Verdict, c.Figure, c.Reason = Fail, "silent", "it did not ask for time at the end of the run"
			c.Action = "check the device's network and its clock settings (docs/site-setup.md)"
		case f.LostPolls > 0:
			c.Verdict, c.Figure, c.Reason = Warn, fmt.Sprintf("silent in %d of %d looks", f.LostPolls, f.Polls), "it went silent for a while"
			c.Action = "check the device's network"
		default:
			c.Verdict, c.Figure, c.Reason = Pass, "answered", "it asked for time the whole run"
		}
		j.add(c)
	}
}

func (j *judge) monitors() {
	for _, m := range j.r.Monitors {
		c := Check{ID: "monitor." + m.Name, Title: "Monitored clock " + m.Name + " (" + m.Host + ")"}
		off := time.Duration(m.OffsetNS)
		switch {
		case m.Answers == 0:
			c.Verdict, c.Figure = Fail, fmt.Sprintf("no answer to %d polls", m.Polls)
			c.Reason = "it does not answer NTP: " + orUnknown(m.LastErr)
			c.Action = "let it serve NTP to sitegm (docs/site-setup.md, Milestone)"
		case !m.Compared:
			c.Verdict, c.Figure = Warn, fmt.Sprintf("answered; offset %s from this box's system clock", off)
			c.Reason, c.Action = "compared with a clock sitegm did not discipline", "run again with sitegm running and locked"
		case m.WarnNS > 0 && (off.Abs() > time.Duration(m.WarnNS)):
			c.Verdict, c.Figure = Fail, fmt.Sprintf("offset %s (warn beyond %s)", off, time.Duration(m.WarnNS))
			c.Reason, c.Action = "its clock is off sitegm's", "point it at sitegm's NTP and check that it follows (w32tm /query /status)"
		default:
			c.Verdict, c.Figure, c.Reason = Pass, fmt.Sprintf("offset %s", off), "it keeps sitegm's time"
		}
		j.add(c)
	}
}

func (j *judge) leap() {
	l := j.r.Leap
	c := Check{ID: "leap.table", Title: "Leap second table"}
	left := l.Expires.Sub(j.obs.Start)
	switch {
	case l.Expires.IsZero():
		c.Verdict, c.Figure = Warn, l.Source+": no expiry date"
		c.Reason = "the table does not say until when it is valid: a leap second announced later would be missed unless the receiver reports it"
		c.Action = "install tzdata's leap-seconds.list and point gnss.leapfile at it"
	case left <= 0:
		c.Verdict, c.Figure = Fail, fmt.Sprintf("%s: expired %s", l.Source, l.Expires.Format("2006-01-02"))
		c.Reason, c.Action = "an expired table may miss a leap second", "update tzdata (apt install tzdata)"
	case left < leapNotice:
		c.Verdict, c.Figure = Warn, fmt.Sprintf("%s: expires %s", l.Source, l.Expires.Format("2006-01-02"))
		c.Reason, c.Action = "it expires within a month", "update tzdata (apt install tzdata)"
	default:
		c.Verdict, c.Figure = Pass, fmt.Sprintf("%s: valid until %s", l.Source, l.Expires.Format("2006-01-02"))
		c.Reason = "valid for more than a month"
	}
	j.add(c)
}
