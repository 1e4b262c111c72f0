package itest

import (
	"bufio"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// v1Sample is one line of ptpv1-probe slave.
type v1Sample struct {
	At        int64  `json:"at"`
	OffsetNS  int64  `json:"offset_ns"`
	DelayNS   int64  `json:"delay_ns"`
	Master    string `json:"master"`
	UTCOffset int16  `json:"utc_offset"`
	Stratum   uint8  `json:"stratum"`
	Preferred bool   `json:"preferred"`
	Flags     uint16 `json:"flags"`
}

func v1Samples(out string) []v1Sample {
	var res []v1Sample
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var s v1Sample
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.At != 0 {
			res = append(res, s)
		}
	}
	return res
}

// TestPTPv1Dante: sitegm serves IEEE 1588-2002 beside PTPv2 on the same
// interface and ports. A v1 slave (ptpv1-probe) measures sitegm against
// gnss-sim's truth while ptp4l measures the v2 port at the same time;
// tshark decodes every v1 packet sitegm sent as PTPv1 with the expected
// fields; a foreign v1 master that is preferred makes sitegm passive on
// v1 only once sitegm has lost its receiver and runs free.
func TestPTPv1Dante(t *testing.T) {
	Parallel(t)
	needTools(t, "ptp4l", "tshark")
	lab := NewLab(t)
	gm := lab.Host("gm", "10.81.0.1/24")
	au := lab.Host("au", "10.81.0.2/24")
	au2 := lab.Host("au2", "10.81.0.3/24")
	mg := lab.Host("mg", "10.81.0.4/24")
	dir := t.TempDir()
	sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", SitegmConfig(t, dir,
		"[[ptp]]\ninterface = \"eth0\"\ntimestamping = \"software\"\ndante_v1 = true\n"))
	sim := StartGNSSSim(t, dir, "--offset", "80ms", "--drift", "1.2")
	m2r := monoToReal()
	probe := au.Start(t, Bin(t, "ptpv1-probe"), "slave", "--interface", "eth0")
	slave := au2.Start(t, "ptp4l", "-f", Ptp4lConfig(t, dir, "slave.conf", Ptp4lSlaveConf), "-i", "eth0", "-m")
	sg.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
	sg.WaitEvent(t, 0, 30*time.Second, "ptpv1_port_state", "ptpv1_state", "MASTER")
	// sitegm's v1 messages only (a v1 header starts with versionPTP 1 in
	// two bytes), each kind to its own count: 44 Syncs and Follow_Ups
	// (20 of each whatever the order), and 5 Delay_Resps (control 3, the
	// header's 33rd byte) in a capture of their own - they come only as
	// fast as the slave asks, and a slave starved of the CPU for seconds
	// asked for none in a window that a single count of all kinds closed
	// on Syncs alone.
	const v1Filter = "src host 10.81.0.1 and (udp port 319 or udp port 320) and udp[8:2] = 1"
	capFile, respFile := filepath.Join(dir, "v1.pcap"), filepath.Join(dir, "v1-resp.pcap")
	capture := mg.Start(t, "tshark", "-i", "eth0", "-w", capFile, "-c", "44", "-f", v1Filter+" and udp[40] != 3")
	respCapture := mg.Start(t, "tshark", "-i", "eth0", "-w", respFile, "-c", "5", "-f", v1Filter+" and udp[40] = 3")
	from := time.Now().Add(5 * time.Second)

	// 1. The v1 slave against the truth; ptp4l on v2 in the same run:
	// 40 exchanges and 30 offsets, however long they take to come.
	var errs, v2errs []float64
	var samples []v1Sample
	collect := func() {
		truth := ReadTruth(t, filepath.Join(dir, "truth.json"))
		errs, samples = nil, nil
		for _, s := range v1Samples(probe.Output()) {
			if time.Unix(0, s.At).Before(from) {
				continue
			}
			if want, ok := truthAt(truth, s.At); ok {
				// offset = host - TAI = host - (host + (UTC-host) + 37 s).
				errs = append(errs, float64(s.OffsetNS)+37e9+want)
				samples = append(samples, s)
			}
		}
		v2errs = errorsVsTruth(t, slave.Output(), filepath.Join(dir, "truth.json"), m2r, from)
	}
	WaitCount(t, 3*time.Minute, "PTPv1 exchanges", 40, func() int { collect(); return len(errs) })
	WaitCount(t, 3*time.Minute, "PTPv2 offsets", 30, func() int { collect(); return len(v2errs) })
	for _, s := range samples {
		if s.UTCOffset != 37 || s.Stratum != 1 || !s.Preferred {
			t.Errorf("v1 Sync advertises utc offset %d stratum %d preferred %v", s.UTCOffset, s.Stratum, s.Preferred)
		}
	}
	r1, m1 := rms(errs)
	r2, m2 := rms(v2errs)
	t.Logf("PTPv1 slave vs truth: rms %.0f ns (mean %.0f) over %d exchanges", r1, m1, len(errs))
	t.Logf("PTPv2 ptp4l vs truth, same run: rms %.0f ns (mean %.0f) over %d samples", r2, m2, len(v2errs))
	for name, e := range map[string][]float64{"v1": errs, "v2": v2errs} {
		if q := p90(e); q > 100_000 || math.IsNaN(q) {
			t.Errorf("%s offsets do not match the truth: 90th percentile %.0f ns", name, q)
		}
	}

	// 2. tshark: every v1 packet sitegm sent.
	if exited, _ := capture.Wait(2 * time.Minute); !exited {
		t.Fatal("tshark did not capture 44 v1 Syncs and Follow_Ups from sitegm")
	}
	if exited, _ := respCapture.Wait(2 * time.Minute); !exited {
		t.Fatal("tshark did not capture 5 v1 Delay_Resps from sitegm")
	}
	var out []byte
	for _, f := range []string{capFile, respFile} {
		o, err := exec.Command("tshark", "-r", f, "-Y", "ip.src==10.81.0.1 && ptp.versionptp==1", "-T", "fields",
			"-e", "ptp.controlfield", "-e", "ptp.subdomain", "-e", "ptp.flags.assist", "-e", "ptp.sdr.grandmasterclockstratum",
			"-e", "ptp.sdr.grandmasterclockidentifier", "-e", "ptp.sdr.currentutcoffset", "-e", "ptp.sdr.syncinterval",
			"-e", "_ws.malformed", "-e", "_ws.expert.severity", "-e", "ip.dsfield.dscp").Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", f, err)
		}
		out = append(out, o...)
	}
	kinds := map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" {
			continue
		}
		f := append(strings.Split(l, "\t"), make([]string, 10)...) // empty trailing fields

		kinds[f[0]]++
		if f[1] != "_DFLT" {
			t.Errorf("subdomain %q", f[1])
		}
		if f[0] == "0" && (f[2] != "1" && f[2] != "True" || f[3] != "1" || f[4] != "GPS" || f[5] != "37" || f[6] != "-2") {
			t.Errorf("Sync fields %q", l)
		}
		if strings.TrimSpace(f[7]+f[8]) != "" {
			t.Errorf("tshark flags a v1 packet: %q", l)
		}
		// Marked as Dante marks its own: Syncs CS7 (56), the rest EF (46).
		if want := map[bool]string{true: "56", false: "46"}[f[0] == "0"]; f[9] != want {
			t.Errorf("v1 control %s marked DSCP %q, want %s: %q", f[0], f[9], want, l)
		}
	}
	t.Logf("v1 packets from sitegm by control: %v", kinds)
	if kinds["0"] < 20 || kinds["2"] < 20 || kinds["3"] < 5 {
		t.Errorf("want Syncs (0), Follow_Ups (2) and Delay_Resps (3): %v", kinds)
	}

	// 3. A foreign v1 master with better credentials (preferred, stratum
	// 0, "ATOM") makes sitegm PASSIVE on v1 only; v2 stays MASTER; when
	// it stops, v1 is MASTER again.
	m := sg.Mark()
	foreign := mg.Start(t, Bin(t, "ptpv1-probe"), "master", "--interface", "eth0", "--stratum", "0", "--identifier", "ATOM", "--preferred")
	_, m = sg.WaitEvent(t, m, 30*time.Second, "ptpv1_port_state", "ptpv1_state", "PASSIVE")
	st, _ := sg.WaitStatus(t, m, 30*time.Second)
	if ptp := st["ptp_eth0"]; !strings.Contains(ptp, "aes67/0/MASTER") || !strings.Contains(ptp, "v1=_DFLT/PASSIVE") {
		t.Errorf("want v2 MASTER and v1 PASSIVE in the status line after PASSIVE: %v", st)
	}
	if l := sg.Lines(0, "event", "ptp_port_state", "ptp_state", "PASSIVE"); len(l) > 0 {
		t.Errorf("the v1 master made the v2 port PASSIVE: %v", l)
	}
	stopped := time.Now()
	foreign.Stop(3 * time.Second)
	again, _ := sg.WaitEvent(t, m, 30*time.Second, "ptpv1_port_state", "ptpv1_state", "MASTER")
	if at, err := time.Parse(time.RFC3339Nano, again["time"]); err == nil {
		t.Logf("v1 MASTER again %.1f s after the foreign v1 master stopped (10 Sync intervals)", at.Sub(stopped).Seconds())
	}
	sim.Stop(3 * time.Second)
}
