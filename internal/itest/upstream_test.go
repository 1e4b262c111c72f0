package itest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// offsetChronyd starts chronyd -x in h serving its host's clock plus off:
// a chrony SOCK refclock is fed samples saying the reference is off ahead
// of the system clock (refclock_sock.c: struct sock_sample), and chronyd
// -x, which never steers the clock, serves the time it tracks.
func offsetChronyd(t *testing.T, h *Host, dir string, off time.Duration) *Proc {
	t.Helper()
	sock := filepath.Join(dir, "ref.sock")
	conf := WriteFile(t, dir, "chrony-offset.conf", fmt.Sprintf(`refclock SOCK %s refid FAKE poll 0 delay 0.0001
local stratum 1
allow
cmdport 0
makestep 1 -1
pidfile %s/chronyd-offset.pid
`, sock, dir))
	p := h.Start(t, "chronyd", "-x", "-d", "-u", "root", "-f", conf)
	p.WaitOutput(t, 5*time.Second, "chronyd version")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		var c net.Conn
		for ctx.Err() == nil {
			if c == nil {
				c, _ = net.Dial("unixgram", sock)
			}
			if c != nil {
				now := time.Now()
				b := make([]byte, 40)
				binary.LittleEndian.PutUint64(b[0:], uint64(now.Unix()))
				binary.LittleEndian.PutUint64(b[8:], uint64(now.Nanosecond()/1000))
				binary.LittleEndian.PutUint64(b[16:], math.Float64bits(off.Seconds()))
				binary.LittleEndian.PutUint32(b[36:], 0x534f434b) // "SOCK"
				if _, err := c.Write(b); err != nil {
					c.Close()
					c = nil
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if c != nil {
			c.Close()
		}
	}()
	p.WaitOutput(t, 30*time.Second, "Selected source FAKE")
	return p
}

type upstreamDoc struct {
	Upstreams []struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		OffsetNS int64  `json:"offset_ns"`
	} `json:"upstreams"`
	Selection *struct {
		OffsetNS  int64 `json:"offset_ns"`
		Survivors int   `json:"survivors"`
		Disagree  bool  `json:"disagree"`
	} `json:"selection"`
}

// TestNTPUpstreamsCrossCheck: three chronyd upstreams in namespaces, two
// serving the true time (their hosts' clocks) and one 40 ms ahead. With
// GNSS right, sitegm selects the two, calls the third a falseticker and
// stays LOCKED. With GNSS 50 ms off from the start (gnss-sim --offset),
// sitegm locks on it, then the cross-check raises gnss_ntp_disagree
// (ERROR): GNSS is not followed and the clock is FREERUN, so its NTP
// answers say LI 3, stratum 0: the wrong time is not served.
func TestNTPUpstreamsCrossCheck(t *testing.T) {
	needTools(t, "chronyd")
	lab := NewLab(t)
	gm := lab.Host("gm", "10.92.0.1/24")
	u1, u2, u3 := lab.Host("u1", "10.92.0.11/24"), lab.Host("u2", "10.92.0.12/24"), lab.Host("u3", "10.92.0.13/24")
	cdir := t.TempDir()
	chronyServer(t, u1, cdir)
	d2 := t.TempDir()
	chronyServer(t, u2, d2)
	offsetChronyd(t, u3, t.TempDir(), 40*time.Millisecond)

	run := func(gnssOffset string) (*Proc, string, string) {
		dir := t.TempDir()
		cfg := WriteFile(t, dir, "sitegm.toml", SitegmBase(dir)+LogStatus(dir)+`[[ntp]]
interface = "eth0"
[[upstream]]
server = "10.92.0.11"
minpoll = 4
maxpoll = 4
[[upstream]]
server = "10.92.0.12"
minpoll = 4
maxpoll = 4
[[upstream]]
server = "10.92.0.13"
minpoll = 4
maxpoll = 4
`)
		sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
		StartGNSSSim(t, dir, "--offset", gnssOffset, "--pps-jitter", "50ns")
		return sg, cfg, dir
	}
	doc := func(cfg string) upstreamDoc {
		var d upstreamDoc
		out, err := exec.Command(Bin(t, "sitegm"), "status", "-c", cfg, "--json").Output()
		if err == nil {
			json.Unmarshal(out, &d)
		}
		return d
	}

	// 1. GNSS right: the falseticker is named, the clock stays LOCKED.
	sg, cfg, _ := run("0s")
	sg.WaitOutput(t, 40*time.Second, "clock_state=LOCKED")
	var d upstreamDoc
	WaitFor(t, 40*time.Second, "two survivors and a falseticker", func() bool {
		d = doc(cfg)
		states := map[string]string{}
		for _, u := range d.Upstreams {
			states[u.Name] = u.State
		}
		return d.Selection != nil && d.Selection.Survivors == 2 && states["10.92.0.13"] == "falseticker"
	})
	t.Logf("GNSS right: upstreams %+v, selection %+v", d.Upstreams, *d.Selection)
	if off := time.Duration(d.Selection.OffsetNS); off > 2*time.Millisecond || off < -2*time.Millisecond || d.Selection.Disagree {
		t.Errorf("selection %+v", *d.Selection)
	}
	time.Sleep(5 * time.Second)
	// The last status line (an event may come after it).
	sts := LogfmtLines(sg.Output(), "status")
	if strings.Contains(sg.Output(), "event=gnss_ntp_disagree") || len(sts) == 0 || sts[len(sts)-1]["clock_state"] != "LOCKED" {
		t.Errorf("right GNSS disputed:\n%s", tail(sg.Output(), 5))
	}
	sg.Stop(5 * time.Second)

	// 2. GNSS 50 ms off from the start.
	sg, cfg, _ = run("50ms")
	sg.WaitOutput(t, 40*time.Second, "clock_state=LOCKED")
	defer func() {
		if t.Failed() {
			out, _ := exec.Command(Bin(t, "sitegm"), "status", "-c", cfg).CombinedOutput()
			t.Logf("sitegm status:\n%s", out)
		}
	}()
	sg.WaitOutput(t, 60*time.Second, "event=gnss_ntp_disagree")
	l := lineWith(sg.Output(), "event=gnss_ntp_disagree")
	if !strings.Contains(l, "level=ERROR") {
		t.Errorf("gnss_ntp_disagree: %s", l)
	}
	sg.WaitOutput(t, 5*time.Second, "time disputed: GNSS disagrees with the NTP upstreams")
	out, err := gm.Run(Bin(t, "sitegm"), "ntp-query", "10.92.0.1")
	if err != nil || !strings.Contains(out, "stratum 0, leap 3") {
		t.Errorf("the disputed time is still served: %v\n%s", err, out)
	}
	d = doc(cfg)
	if d.Selection == nil || !d.Selection.Disagree || time.Duration(d.Selection.OffsetNS) > -45*time.Millisecond {
		t.Errorf("status: %+v", d.Selection)
	}
	t.Logf("GNSS 50 ms off: %s", l)
}
