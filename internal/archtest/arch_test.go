package archtest

import (
	"bufio"
	"go/build"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// root is the repository (two levels above this file).
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// pkg is one package of the module: its path below the module
// ("hw/gnss"), its sitegm imports (likewise), and its Go files.
type pkg struct {
	path    string
	imports []string
	files   []string // production files, relative to the root
}

func packages(t *testing.T) []pkg {
	t.Helper()
	var out []pkg
	r := root()
	err := filepath.WalkDir(r, func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if n := d.Name(); dir != r && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bin") {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(r, dir)
		p := pkg{path: filepath.ToSlash(rel)}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, "sitegm/") {
				p.imports = append(p.imports, strings.TrimPrefix(imp, "sitegm/"))
			}
		}
		for _, f := range bp.GoFiles {
			p.files = append(p.files, filepath.Join(rel, f))
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("found %d packages: not the repository", len(out))
	}
	return out
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// The import rules of docs/architecture.md.
func TestImportRules(t *testing.T) {
	servers := []string{"ptp", "ptp/v1", "ntp", "ntp/upstream"}
	for _, p := range packages(t) {
		for _, imp := range p.imports {
			var broken string
			switch {
			case under(p.path, "hw") && under(imp, "internal"):
				broken = "hw/ never imports internal/: hand it a function or a value type"
			case isOneOf(p.path, servers) && under(imp, "clock") && imp != "clock/quality":
				broken = "the servers read only clock/quality's value types of clock/"
			case under(p.path, "clock") && (under(imp, "ptp") || under(imp, "ntp") || under(imp, "hw") || under(imp, "internal")):
				broken = "clock/ knows no protocol, no hardware and no daemon"
			case p.path == "hw/gnss" && under(imp, "clock"):
				broken = "the decoder knows no clock"
			case p.path == "event":
				broken = "event is a leaf every layer may import"
			case imp == "internal/daemon" && p.path != "cmd/sitegm":
				broken = "only the command runs the daemon"
			}
			if broken != "" {
				t.Errorf("%s imports %s: %s", p.path, imp, broken)
			}
		}
	}
}

func isOneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

// Sizes: no production file past what one reader holds, and a daemon
// that only wires.
func TestSizes(t *testing.T) {
	const maxFile, maxDaemon = 650, 900
	daemon := 0
	for _, p := range packages(t) {
		for _, f := range p.files {
			n := lines(t, filepath.Join(root(), f))
			if n > maxFile {
				t.Errorf("%s: %d lines, more than %d: split it by job", f, n, maxFile)
			}
			if p.path == "internal/daemon" {
				daemon += n
			}
		}
	}
	t.Logf("internal/daemon: %d production lines", daemon)
	if daemon > maxDaemon {
		t.Errorf("internal/daemon: %d production lines, more than %d: a decision moved into the wiring", daemon, maxDaemon)
	}
}

func lines(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

// One vocabulary: the NOTICE level is defined once, in package event.
func TestOneNoticeLevel(t *testing.T) {
	for _, p := range packages(t) {
		for _, f := range p.files {
			b, err := os.ReadFile(filepath.Join(root(), f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "slog.Level(2)") && p.path != "event" {
				t.Errorf("%s defines a NOTICE level of its own: use event.Notice", f)
			}
		}
	}
}
