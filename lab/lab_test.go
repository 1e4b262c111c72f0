package lab

import (
	"bytes"
	"strconv"
	"testing"
)

// readCPIO parses what cpioWriter wrote (newc), name -> data.
func readCPIO(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for {
		if len(b) < 110 || string(b[:6]) != "070701" {
			t.Fatalf("bad header at %q", b[:min(len(b), 20)])
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		size, nameLen := field(6), field(11)
		name := string(b[110 : 110+nameLen-1])
		off := (110 + nameLen + 3) &^ 3
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = string(b[off : off+size])
		b = b[(off+size+3)&^3:]
	}
}

func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.file("bin/tool", 0o755, []byte("abc"))
	c.symlink("bin/sh", "busybox")
	c.file("etc/x", 0o644, []byte("hello world"))
	c.close()
	got := readCPIO(t, buf.Bytes())
	for name, want := range map[string]string{"bin": "", "bin/tool": "abc", "bin/sh": "busybox", "etc": "", "etc/x": "hello world"} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s: %q (present %v)", name, g, ok)
		}
	}
}

func TestResultLine(t *testing.T) {
	r := Result{Name: "extts", Pass: true, Figures: map[string]any{"b": 2, "a": 1}, Seconds: 30}
	if got := r.Line(); got != "lab: extts             PASS  a=1 b=2 (30 s)" {
		t.Errorf("%q", got)
	}
}

// The scenarios shared between two guests: each runs about half, in the
// lab's order, and every scenario runs once.
func TestShares(t *testing.T) {
	sh := Shares(Scenarios, 2)
	if len(sh) != 2 {
		t.Fatalf("%v", sh)
	}
	seen := map[string]int{}
	var load [2]float64
	for g, names := range sh {
		for i, n := range names {
			seen[n]++
			load[g] += scenarioSeconds[n]
			if i > 0 && index(names[i-1]) > index(n) {
				t.Errorf("guest %d out of order: %v", g, names)
			}
		}
	}
	for _, n := range Scenarios {
		if seen[n] != 1 || scenarioSeconds[n] == 0 {
			t.Errorf("%s: runs %d times, expected %v s", n, seen[n], scenarioSeconds[n])
		}
	}
	if r := load[0] / load[1]; r < 0.8 || r > 1.25 {
		t.Errorf("unbalanced: %v s and %v s", load[0], load[1])
	}
	if one := Shares([]string{"leap"}, 2); len(one) != 1 || one[0][0] != "leap" {
		t.Errorf("one scenario on two guests: %v", one)
	}
}

func index(name string) int {
	for i, n := range Scenarios {
		if n == name {
			return i
		}
	}
	return -1
}
