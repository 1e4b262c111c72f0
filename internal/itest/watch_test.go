package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// freeTCP is a free TCP port on loopback.
func freeTCP(t *testing.T) int { return FreePort(t, "tcp") }

func httpGet(u string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", u, r.Status)
	}
	return string(b), err
}

// promQuery asks Prometheus' query API for expr's current value(s).
func promQuery(prom, expr string) ([]float64, error) {
	body, err := httpGet(prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("query %s: %v %s", expr, err, body)
	}
	var out []float64
	for _, x := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(x.Value[1]), 64)
		out = append(out, v)
	}
	return out, nil
}

// TestMetricsScrapedByPrometheus: a real Prometheus (Debian's) scrapes
// sitegm every second; its query API returns sitegm's clock class 6 and
// offset once locked, it loaded the alerting rules, `promtool check
// metrics` finds nothing to say about a scrape and `promtool check rules`
// accepts the rules file.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	Parallel(t)
	needTools(t, "prometheus", "promtool")
	dir := t.TempDir()
	port := freeTCP(t)
	cfg := SitegmConfig(t, dir, LoopbackNTP(t)+fmt.Sprintf("[http]\nlisten = \"127.0.0.1:%d\"\n", port))
	sg := Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	sg.WaitEvent(t, 0, 20*time.Second, "http_up")
	StartGNSSSim(t, dir, "--offset", "80ms", "--pps-jitter", "50ns")

	rules := filepath.Join(Root(), "configs", "sitegm-alerts.yml")
	if out, err := exec.Command("promtool", "check", "rules", rules).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	pport := freeTCP(t)
	pconf := WriteFile(t, dir, "prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: sitegm
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, rules, port))
	Start(t, "prometheus", "--config.file", pconf, "--storage.tsdb.path", filepath.Join(dir, "tsdb"),
		"--web.listen-address", fmt.Sprintf("127.0.0.1:%d", pport))
	prom := fmt.Sprintf("http://127.0.0.1:%d", pport)

	sg.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
	var class, offset []float64
	WaitFor(t, 90*time.Second, "clockClass 6 and an offset in Prometheus", func() bool {
		class, _ = promQuery(prom, `sitegm_clock_class{job="sitegm"}`)
		offset, _ = promQuery(prom, `sitegm_clock_offset_seconds{job="sitegm"}`)
		return len(class) == 1 && class[0] == 6 && len(offset) == 1
	})
	if offset[0] > 1e-6 || offset[0] < -1e-6 {
		t.Errorf("offset %v s while locked", offset[0])
	}
	if v, err := promQuery(prom, `count(sitegm_clock_state{state="LOCKED"} == 1)`); err != nil || len(v) != 1 || v[0] != 1 {
		t.Errorf("LOCKED state series: %v %v", v, err)
	}
	body, err := httpGet(prom + "/api/v1/rules")
	// Every rule the file holds is loaded (counted from the file, which
	// grows with the issues).
	ruleText, _ := os.ReadFile(rules)
	if n := strings.Count(string(ruleText), "- alert:"); err != nil || !strings.Contains(body, `"name":"sitegm"`) || n == 0 ||
		strings.Count(body, `"type":"alerting"`) != n {
		t.Errorf("rules not loaded: %v %.300s", err, body)
	}
	scrape, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(scrape)
	if out, err := check.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestStatusPageInChromium: headless Chromium (Debian's) loads the page
// of the running demo; the DOM it rendered shows the clock LOCKED, plots
// with points, the follower table with the demo's own NTP monitor as a
// client and the monitored clock. The screenshot is kept as
// bin/status-page.png.
func TestStatusPageInChromium(t *testing.T) {
	Parallel(t)
	needTools(t, "chromium")
	dir := t.TempDir()
	port := freeTCP(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	bin := filepath.Dir(Bin(t, "gnss-sim"))
	demo := Start(t, Bin(t, "sitegm"), "demo", "--dir", dir, "--bin", bin, "--http", addr)
	demo.WaitText(t, 0, 30*time.Second, "status page: http://"+addr+"/")
	var st struct {
		Clock struct {
			State string `json:"state"`
		} `json:"clock"`
		Followers []json.RawMessage `json:"followers"`
		Monitors  []struct {
			Answers int `json:"answers"`
		} `json:"monitors"`
	}
	WaitFor(t, 2*time.Minute, "the demo locked, a follower and a monitored answer", func() bool {
		b, err := httpGet("http://" + addr + "/status.json")
		return err == nil && json.Unmarshal([]byte(b), &st) == nil && st.Clock.State == "LOCKED" &&
			len(st.Followers) > 0 && len(st.Monitors) == 1 && st.Monitors[0].Answers > 0
	})
	time.Sleep(3 * time.Second) // a few more seconds of history
	profile := t.TempDir()
	chrome := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("chromium", append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--user-data-dir=" + profile, "--no-first-run", "--window-size=900,2400"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+profile)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(out)
	}
	dom := chrome("--dump-dom", "http://"+addr+"/")
	if !regexp.MustCompile(`id="clock-state"[^>]*>LOCKED<`).MatchString(dom) {
		t.Errorf("rendered page does not show LOCKED:\n%.2000s", dom)
	}
	m := regexp.MustCompile(`id="clock-offset" data-points="(\d+)"`).FindStringSubmatch(dom)
	if m == nil || m[1] == "0" || !strings.Contains(dom, "<polyline") {
		t.Errorf("no plot with points: %v", m)
	}
	if !regexp.MustCompile(`<tr class="follower"><td>ntp v4</td><td>lo</td><td>127\.0\.0\.1</td>`).MatchString(dom) {
		t.Errorf("follower table:\n%s", regexp.MustCompile(`(?s)<table id="followers">.*?</table>`).FindString(dom))
	}
	if !regexp.MustCompile(`<td>self</td><td>127\.0\.0\.1:1123</td>`).MatchString(dom) {
		t.Errorf("monitored clock table:\n%s", regexp.MustCompile(`(?s)<table id="monitors">.*?</table>`).FindString(dom))
	}
	shot := filepath.Join(Root(), "bin", "status-page.png")
	os.MkdirAll(filepath.Dir(shot), 0o755)
	chrome("--screenshot="+shot, "http://"+addr+"/")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

// macOf reads an interface's MAC in a host.
func macOf(t *testing.T, h *Host, iface string) net.HardwareAddr {
	t.Helper()
	out, err := h.Run("cat", "/sys/class/net/"+iface+"/address")
	if err != nil {
		t.Fatalf("%s %s: %v %s", h.NS, iface, err, out)
	}
	mac, err := net.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// TestFollowersAndMonitoredClock, on a lab of namespaces: a ptp4l slave
// and ptpv1-probe (Dante's PTPv1) follow sitegm on the audio link and
// appear in its followers with their identities (clockIdentity from the
// MAC, v1 UUID the MAC); the ptp4l slave is expected, and stopping it
// raises ptp_follower_lost. On the video link a chronyd serves its
// host's clock, 120 ms behind sitegm's (gnss-sim's offset): sitegm
// measures that offset within the path's delay plus 2 ms, raises
// monitor_offset (warn 50 ms), and monitor_unreachable once chronyd stops.
func TestFollowersAndMonitoredClock(t *testing.T) {
	Parallel(t)
	needTools(t, "ptp4l", "chronyd")
	lab := NewLab(t)
	gm, audio, video := lab.Bare("gm"), lab.Bare("audio"), lab.Bare("video")
	lab.Link(gm, "eth0", "10.91.10.1/24", audio, "eth0", "10.91.10.2/24")
	lab.Link(gm, "eth1", "10.91.20.1/24", video, "eth0", "10.91.20.2/24")
	mac := macOf(t, audio, "eth0")
	ptpID := fmt.Sprintf("%02x%02x%02x.fffe.%02x%02x%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
	v1ID := mac.String()
	dir := t.TempDir()
	cfg := WriteFile(t, dir, "sitegm.toml", SitegmBase(dir)+LogStatus(dir)+fmt.Sprintf(`[[ptp]]
interface = "eth0"
timestamping = "software"
dante_v1 = true
expect = ["%s"]
[[ntp]]
interface = "eth1"
[[monitor]]
name = "recorder"
host = "10.91.20.2"
interval = "2s"
warn = "50ms"
`, ptpID))
	sg := gm.Start(t, Bin(t, "sitegm"), "run", "-c", cfg)
	StartGNSSSim(t, dir, "--offset", "120ms", "--pps-jitter", "50ns")
	chrony := chronyServer(t, video, dir)
	sg.WaitEvent(t, 0, 60*time.Second, "clock_state", "clock_state", "LOCKED")
	slave := audio.Start(t, "ptp4l", "-f", Ptp4lConfig(t, dir, "slave.conf", Ptp4lSlaveConf), "-i", "eth0", "-m")
	audio.Start(t, Bin(t, "ptpv1-probe"), "slave", "--interface", "eth0")

	type follower struct {
		Kind, Identity, Address string
		Requests                int
	}
	var st struct {
		Followers []follower `json:"followers"`
		Monitors  []struct {
			OffsetNS int64 `json:"offset_ns"`
			DelayNS  int64 `json:"delay_ns"`
			Answers  int   `json:"answers"`
		} `json:"monitors"`
	}
	status := func() {
		out, err := exec.Command(Bin(t, "sitegm"), "status", "-c", cfg, "--json").Output()
		if err == nil {
			st.Followers, st.Monitors = nil, nil
			json.Unmarshal(out, &st)
		}
	}
	has := func(kind, id string) bool {
		for _, f := range st.Followers {
			if f.Kind == kind && f.Identity == id && f.Address == "10.91.10.2" && f.Requests > 1 {
				return true
			}
		}
		return false
	}
	WaitFor(t, 90*time.Second, "the ptp4l slave and the v1 probe in the followers", func() bool {
		status()
		return has("ptp", ptpID+"-1") && has("ptpv1", v1ID+"-1")
	})
	WaitFor(t, 60*time.Second, "the recorder measured", func() bool {
		status()
		return len(st.Monitors) == 1 && st.Monitors[0].Answers >= 2
	})
	// chronyd serves the host clock; sitegm serves true UTC = host + 120 ms.
	truth := ReadTruth(t, filepath.Join(dir, "truth.json"))
	want := -float64(truth[len(truth)-1].UTCMinusHost)
	m := st.Monitors[0]
	if d := float64(m.OffsetNS) - want; d > float64(m.DelayNS)+2e6 || d < -float64(m.DelayNS)-2e6 {
		t.Errorf("recorder offset %v, truth %v (delay %v)", time.Duration(m.OffsetNS), time.Duration(int64(want)), time.Duration(m.DelayNS))
	}
	t.Logf("recorder offset %v, truth %v, delay %v", time.Duration(m.OffsetNS), time.Duration(int64(want)), time.Duration(m.DelayNS))
	if l, _ := sg.WaitEvent(t, 0, 40*time.Second, "monitor_offset"); !l.Has("level", "WARNING", "monitor", "recorder") {
		t.Errorf("monitor_offset: %v", l)
	}

	mark := sg.Mark()
	slave.Stop(3 * time.Second)
	if l, _ := sg.WaitEvent(t, mark, 60*time.Second, "ptp_follower_lost"); !l.Has("level", "WARNING", "follower", ptpID) {
		t.Errorf("ptp_follower_lost: %v", l)
	}
	mark = sg.Mark()
	chrony.Stop(3 * time.Second)
	if l, _ := sg.WaitEvent(t, mark, 60*time.Second, "monitor_unreachable"); !l.Has("level", "WARNING") {
		t.Errorf("monitor_unreachable: %v", l)
	}
}

// TestHTTPFloodKeepsSyncs: the status page and metrics hammered from the
// LAN, by 64 clients as fast as they can and 48 connections opened and
// left silent (more than the endpoint's 32), for 8 s: Syncs and
// Announces keep their rhythm (no gap over two intervals), a legitimate
// NTP client loses at most 1 %, and the endpoint answers again once the
// flood is over. In the quiet group, as TestFloodsNeverStopService.
func TestHTTPFloodKeepsSyncs(t *testing.T) {
	Quiet(t)
	h := newHostileLab(t, "[http]\nlisten = \"10.77.0.1:8123\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchPTP(t, h.slave)
	np := runNTPProbe(ctx, h.cli.ListenUDP(t), h.gm.Addr, 50*time.Millisecond)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.atk.InNS(func() error {
			var e error
			c, e = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			return e
		})
		return c, err
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 64}}
	start := time.Now()
	time.Sleep(2 * time.Second)
	var silent []net.Conn
	for i := 0; i < 48; i++ {
		if c, err := dial(ctx, "tcp", "10.77.0.1:8123"); err == nil {
			silent = append(silent, c)
		}
	}
	var served, failed atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(8 * time.Second)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			paths := []string{"/", "/metrics", "/status.json", "/?range=24h"}
			for n := i; time.Now().Before(stop); n++ {
				r, err := client.Get("http://10.77.0.1:8123" + paths[n%len(paths)])
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				served.Add(1)
			}
		}(i)
	}
	wg.Wait()
	for _, c := range silent {
		c.Close()
	}
	time.Sleep(2 * time.Second)
	end := time.Now()
	cancel()
	time.Sleep(300 * time.Millisecond)
	t.Logf("HTTP flood: %d requests served in 8 s (%d failed, %d silent connections held)", served.Load(), failed.Load(), len(silent))
	rhythmKept(t, w, start, end)
	np.mu.Lock()
	loss := 1 - float64(np.got)/float64(np.sent)
	np.mu.Unlock()
	if loss > 0.01 {
		t.Errorf("legitimate NTP client lost %.2f %% during the HTTP flood", 100*loss)
	}
	if served.Load() == 0 {
		t.Error("the endpoint served nothing during the flood")
	}
	if r, err := client.Get("http://10.77.0.1:8123/status.json"); err != nil || r.StatusCode != 200 {
		t.Errorf("the endpoint does not answer after the flood: %v", err)
	}
}
