package itest

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	Parallel(t)
	sitegm := Bin(t, "sitegm")
	out, err := exec.Command(sitegm, "check-config", "-c", filepath.Join(Root(), "configs", "sitegm.toml")).Output()
	if err != nil {
		t.Fatalf("example refused: %v", err)
	}
	if !strings.Contains(string(out), "[[ptp]]") || !strings.Contains(string(out), `holdover = "4h"`) {
		t.Errorf("effective configuration:\n%s", out)
	}
	dir := t.TempDir()
	bad := WriteFile(t, dir, "bad.toml", "[gnss]\nbaud = 1\nfoo = 2\n[clock]\ndiscipline = \"x\"\n")
	cmd := exec.Command(sitegm, "check-config", "-c", bad)
	stderr, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("exit %d, want 1", cmd.ProcessState.ExitCode())
	}
	for _, want := range []string{bad + ":2: gnss.baud:", bad + ":3: gnss.foo: unknown key", bad + ":5: clock.discipline:"} {
		if !strings.Contains(string(stderr), want) {
			t.Errorf("missing %q in:\n%s", want, stderr)
		}
	}
}

func TestGNSSDecodeJSON(t *testing.T) {
	Parallel(t)
	capture := filepath.Join(Root(), "..", "shared", "testdata", "gnss", "gpsd-logs", "ublox-zed-f9t-ubx_nmea_l5.log")
	cmd := exec.Command(Bin(t, "sitegm"), "gnss", "decode", "--json", capture)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("capture not available: %v %s", err, stderr.String())
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	n := 0
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		for _, k := range []string{"time", "valid", "fix", "sats", "talker", "sentence"} {
			if _, ok := r[k]; !ok {
				t.Errorf("no %q in %v", k, r)
			}
		}
		if n == 0 && (r["time"] != "2025-07-31T19:33:34Z" || r["valid"] != true || r["talker"] != "GN" || r["sentence"] != "RMC") {
			t.Errorf("first report %v", r)
		}
		n++
	}
	if n != 9 {
		t.Errorf("%d reports, want 9", n)
	}
	for _, want := range []string{"sentences by type:", "checksum errors 0", "bytes skipped 0", "UBX by class-id:"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr.String())
		}
	}
}

// `sitegm sim --json` prints one object per servo with the agreed keys.
func TestSimJSON(t *testing.T) {
	Parallel(t)
	out, err := exec.Command(Bin(t, "sitegm"), "sim", "--scenario", "lock", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two objects, got:\n%s", out)
	}
	for i, want := range []string{"sitegm", "pi"} {
		var r map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"servo", "rms_te_ns", "max_te_ns", "lock_time_s", "holdover_te_ns", "clock_class"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: no %q", want, k)
			}
		}
		h, _ := r["holdover_te_ns"].(map[string]any)
		if r["servo"] != want || len(h) != 3 || h["1h"] != nil {
			t.Errorf("object %d: %v", i, r)
		}
	}
}
