package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sitegm/hw/ntpnet"
	"sitegm/hw/ptpnet"
	"sitegm/internal/history"
	"sitegm/internal/monitor"
	"sitegm/internal/status"
)

func sample(now time.Time) *status.Status {
	return &status.Status{Time: now, Uptime: 3600, Summary: "LOCKED class 6",
		Clock: status.Clock{Name: "phc", State: "LOCKED", ClockClass: 6, OffsetNS: 12, EstErrorNS: 250, FrequencyPPB: -1234.5, MeasNoiseNS: 20},
		GNSS:  status.GNSS{State: "fix", Fix: "3d", Satellites: 11, PPSOK: true, Antenna: "ok", Jamming: "ok", Spoofing: "none", JammingIndicator: 12, TimeAccuracyNS: 20},
		PTP: []ptpnet.Status{{Interface: "eth0.10", Profile: "aes67", State: "MASTER", DelayReqs: 1000, Syncs: 8000,
			V1: &ptpnet.V1Status{State: "MASTER", DelayReqs: 50, Syncs: 4000}}},
		NTP:            []ntpnet.Status{{Interface: "eth0.20", Port: 123, State: "SERVING", Requests: 77, Replies: 76, KoD: 1}},
		FollowerCounts: []status.FollowerCount{{Kind: "ptp", Interface: "eth0.10", Active: 2}, {Kind: "ntp", Interface: "eth0.20", Active: 3}},
		Followers: []status.Follower{{Kind: "ptp", Interface: "eth0.10", Identity: "001dc1.fffe.0a0b0c-1", Address: "10.0.10.5", Requests: 900, IntervalS: 0.125, AgeS: 0.1},
			{Kind: "ntp", Interface: "eth0.20", Identity: "10.0.20.10", Address: "10.0.20.10", Version: 3, Mode: 1, Requests: 5, IntervalS: 1024}},
		Monitors:      []monitor.Status{{Name: "recorder", Host: "10.0.20.10", Reachable: true, Reach: 0xff, OffsetNS: 3_400_000, DelayNS: 400_000, Stratum: 2, WarnNS: 10e6, Polls: 9, Answers: 9}},
		LostFollowers: []string{"eth0.10 001dc1.fffe.0d0e0f"},
		Rejected:      map[string]uint64{"ntp/eth0.20/malformed": 4},
	}
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// TestEndpoint: /metrics is valid exposition text with the documented
// names and the status' values; / shows the state, plots with points,
// the followers and the monitored host; /status.json is the document;
// the endpoint refuses anything but GET and HEAD.
func TestEndpoint(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := history.New()
	for i := 0; i < 600; i++ {
		at := now.Add(time.Duration(i-600) * time.Second)
		h.Add("clock_state", "", at, 3)
		h.Add("clock_offset", "s", at, float64(i%7)*1e-9)
		h.Add("clock_est_error", "s", at, 250e-9)
		h.Add("followers/ptp/eth0.10", "", at, 2)
		h.Add("monitor_offset/recorder", "s", at, 3.4e-3)
	}
	st := sample(now)
	srv := New(func() *status.Status { return st }, h)
	srv.now = func() time.Time { return now }
	hd := srv.Handler()

	code, body := get(t, hd, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("exposition: %v", err)
	}
	val := func(name string, labels map[string]string) float64 {
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sitegm_clock_class", nil, 6},
		{"sitegm_clock_state", map[string]string{"state": "LOCKED"}, 1},
		{"sitegm_clock_state", map[string]string{"state": "HOLDOVER"}, 0},
		{"sitegm_clock_offset_seconds", nil, 12e-9},
		{"sitegm_clock_estimated_error_seconds", nil, 250e-9},
		{"sitegm_clock_frequency_offset_ratio", nil, -1234.5e-9},
		{"sitegm_gnss_satellites", nil, 11},
		{"sitegm_gnss_antenna", map[string]string{"status": "ok"}, 1},
		{"sitegm_ptp_delay_requests_total", map[string]string{"interface": "eth0.10", "version": "1"}, 50},
		{"sitegm_ptp_followers", map[string]string{"interface": "eth0.10", "version": "2"}, 2},
		{"sitegm_ntp_clients", map[string]string{"interface": "eth0.20"}, 3},
		{"sitegm_ntp_kod_total", nil, 1},
		{"sitegm_monitor_offset_seconds", map[string]string{"name": "recorder"}, 3.4e-3},
		{"sitegm_follower_expected_lost", map[string]string{"follower": "eth0.10 001dc1.fffe.0d0e0f"}, 1},
		{"sitegm_rejected_total", map[string]string{"reason": "malformed"}, 4},
	} {
		if got := val(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for name := range fams {
		if !model.LegacyValidation.IsValidMetricName(name) || !strings.HasPrefix(name, "sitegm_") {
			t.Errorf("metric name %q", name)
		}
	}

	code, body = get(t, hd, "GET", "/")
	if code != 200 {
		t.Fatalf("/ %d", code)
	}
	for _, want := range []string{`id="clock-state" class="state locked">LOCKED`, `001dc1.fffe.0a0b0c-1`, `10.0.20.10`, `3.4ms`,
		`expected follower silent: eth0.10 001dc1.fffe.0d0e0f`, `<meta http-equiv="refresh"`, `ntp v3 symmetric`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	pts := regexp.MustCompile(`id="(clock-offset|followers|monitor-offsets|clock-state-timeline)" data-points="(\d+)"`).FindAllStringSubmatch(body, -1)
	if len(pts) != 4 {
		t.Fatalf("plots %v", pts)
	}
	for _, m := range pts {
		if n, _ := strconv.Atoi(m[2]); n < 60 {
			t.Errorf("plot %s has %d points", m[1], n)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "<script") {
		t.Error("the page refers outside or runs a script")
	}

	code, body = get(t, hd, "GET", "/status.json")
	var back status.Status
	if code != 200 || json.Unmarshal([]byte(body), &back) != nil || back.Clock.ClockClass != 6 || len(back.Monitors) != 1 {
		t.Errorf("/status.json %d %s", code, body)
	}
	if code, _ := get(t, hd, "POST", "/"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
	if code, _ := get(t, hd, "GET", "/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
	none := New(func() *status.Status { return nil }, history.New()).Handler()
	if code, _ := get(t, none, "GET", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("before the first status: %d", code)
	}
	if code, body := get(t, none, "GET", "/metrics"); code != 200 || !strings.Contains(body, "sitegm_up 0") {
		t.Errorf("metrics before the first status: %d %s", code, body)
	}
}
