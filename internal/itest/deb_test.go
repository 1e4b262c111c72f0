package itest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// buildDeb runs packaging/deb/build.sh with VERSION version into dir.
func buildDeb(t *testing.T, dir, version string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(Root(), "packaging", "deb", "build.sh"), dir)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "VERSION="+version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// TestDebianPackage: the package builds reproducibly, lintian finds no
// error and no warning, and on a fresh Debian bookworm root (mmdebstrap
// from Debian's mirror, minbase with systemd) apt installs it: the files
// are in place, systemd-analyze verifies the installed unit, the
// installed configuration passes check-config, the user exists (in
// dialout), the unit is enabled but nothing started; an upgrade keeps an
// edited configuration, remove keeps it, purge removes it, the state and
// the user.
func TestDebianPackage(t *testing.T) {
	Parallel(t)
	if testing.Short() {
		t.Skip("integration test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (mmdebstrap, chroot); CI runs as root")
	}
	for _, c := range []string{"dpkg-deb", "mmdebstrap", "lintian"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not installed (make test installs it as root)", c)
		}
	}
	dir := t.TempDir()
	d1 := buildDeb(t, filepath.Join(dir, "a"), "1.0")
	again := buildDeb(t, filepath.Join(dir, "b"), "1.0")
	h := func(p string) [32]byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	if h(d1) != h(again) {
		t.Error("two builds of the same tree differ: not reproducible")
	}
	d2 := buildDeb(t, filepath.Join(dir, "c"), "1.1")
	if out, err := exec.Command("lintian", "--fail-on", "error,warning", d1).CombinedOutput(); err != nil {
		t.Errorf("lintian: %v\n%s", err, out)
	}

	root := filepath.Join(dir, "root")
	if out, err := exec.Command("mmdebstrap", "--variant=minbase", "--include=systemd,passwd", "bookworm", root).CombinedOutput(); err != nil {
		t.Skipf("mmdebstrap could not build a bookworm root (no Debian mirror?): %v\n%s", err, tail(string(out), 10))
	}
	proc := filepath.Join(root, "proc")
	if err := syscall.Mount("proc", proc, "proc", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(proc, syscall.MNT_DETACH) })
	for _, d := range []string{d1, d2} {
		b, _ := os.ReadFile(d)
		os.WriteFile(filepath.Join(root, "tmp", filepath.Base(d)), b, 0o644)
	}
	run := func(script string) (string, error) {
		cmd := exec.Command("chroot", root, "sh", "-ec", script)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(what, script string) string {
		t.Helper()
		out, err := run(script)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return out
	}

	// apt resolves the dependencies (procps is not in minbase).
	must("apt lists", "apt-get update -qq")
	out := must("install", "apt-get install -y --no-install-recommends /tmp/"+filepath.Base(d1))
	if !strings.Contains(out, "edit /etc/sitegm/sitegm.toml") {
		t.Errorf("the install does not say to edit the configuration first:\n%s", out)
	}
	for _, f := range []string{"/usr/bin/sitegm", "/usr/bin/gnss-sim", "/usr/bin/ptpv1-probe", "/lib/systemd/system/sitegm.service",
		"/etc/sitegm/sitegm.toml", "/usr/lib/sysusers.d/sitegm.conf", "/usr/lib/tmpfiles.d/sitegm.conf", "/lib/udev/rules.d/60-sitegm.rules",
		"/usr/share/man/man8/sitegm.8.gz", "/usr/share/man/man5/sitegm.toml.5.gz", "/usr/share/doc/sitegm/copyright",
		"/usr/share/doc/sitegm/examples/sitegm-alerts.yml", "/etc/systemd/system/multi-user.target.wants/sitegm.service", "/var/lib/sitegm"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	// --man=no: minbase has no man-db to look the Documentation= pages up
	// with (they are checked above as files).
	if out, err := run("systemd-analyze verify --man=no /lib/systemd/system/sitegm.service"); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	must("check-config", "sitegm check-config -c /etc/sitegm/sitegm.toml >/dev/null")
	if out := must("user", "id sitegm"); !strings.Contains(out, "(dialout)") {
		t.Errorf("user: %s", out)
	}
	if out, _ := run("ls /run/sitegm 2>&1; pgrep -x sitegm || true"); strings.Contains(out, "status.sock") {
		t.Errorf("started on a fresh install: %s", out)
	}

	must("edit", `sed -i 's/^level = "info"/level = "notice"/' /etc/sitegm/sitegm.toml; grep -q '^level = "notice"' /etc/sitegm/sitegm.toml`)
	must("upgrade", "apt-get install -y --no-install-recommends /tmp/"+filepath.Base(d2))
	if out := must("version", "dpkg-query -W -f '${Version}' sitegm"); out != "1.1" {
		t.Errorf("after the upgrade: version %q", out)
	}
	must("edit kept", `grep -q '^level = "notice"' /etc/sitegm/sitegm.toml`)

	must("remove", "apt-get remove -y sitegm")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/sitegm")); err == nil {
		t.Error("remove left /usr/bin/sitegm")
	}
	must("config kept on remove", `grep -q '^level = "notice"' /etc/sitegm/sitegm.toml`)
	must("purge", "dpkg --purge sitegm")
	for _, f := range []string{"/etc/sitegm", "/var/lib/sitegm"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Errorf("purge left %s", f)
		}
	}
	if out, _ := run("getent passwd sitegm || true"); out != "" {
		t.Errorf("purge left the user: %s", out)
	}
	if st := must("status", "dpkg-query -W -f '${db:Status-Abbrev}' sitegm 2>&1 || true"); !bytes.Contains([]byte(st), []byte("no packages")) && strings.TrimSpace(st) != "un" && strings.TrimSpace(st) != "pn" {
		t.Logf("dpkg status after purge: %q", st)
	}
	t.Logf("%s: installed, verified, upgraded to 1.1 keeping the edited configuration, removed, purged", fmt.Sprint(filepath.Base(d1)))
}
