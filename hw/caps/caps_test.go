package caps

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNarrow runs in a child process (dropping is for good): as root, it
// keeps CAP_NET_BIND_SERVICE only, and then may bind port 123 but may no
// longer open a raw packet socket, on any thread.
func TestNarrow(t *testing.T) {
	if os.Getenv("SITEGM_CAPS_CHILD") == "1" {
		left, err := Narrow(Of(NetBindService))
		if errors.Is(err, syscall.ENOTSUP) {
			os.Exit(3) // built with cgo: AllThreadsSyscall is refused
		}
		if err != nil || left != Of(NetBindService) {
			t.Fatalf("narrow: %v, left %v", err, left)
		}
		done := make(chan error, 8)
		for i := 0; i < 8; i++ { // on several threads
			go func() {
				fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
				if err == nil {
					unix.Close(fd)
					done <- errors.New("a raw socket opened after CAP_NET_RAW was dropped")
					return
				}
				done <- nil
			}()
		}
		for i := 0; i < 8; i++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 123, Addr: [4]byte{127, 0, 0, 1}}); err != nil && !errors.Is(err, unix.EADDRINUSE) {
			t.Fatalf("bind 123 with CAP_NET_BIND_SERVICE kept: %v", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (a process with capabilities to drop); CI runs as root")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestNarrow$", "-test.v")
	cmd.Env = append(os.Environ(), "SITEGM_CAPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		t.Skip("built with cgo (CGO_ENABLED=1): capabilities cannot be changed on all threads; make builds with CGO_ENABLED=0")
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestSet(t *testing.T) {
	s := Of(SysTime, NetRaw)
	if !s.Has(SysTime) || s.Has(NetAdmin) || s.String() != "CAP_NET_RAW CAP_SYS_TIME" {
		t.Errorf("%v", s)
	}
}

// Every capability Linux has is named (the log of what was dropped named
// most of them cap0 ... cap40 before).
func TestNames(t *testing.T) {
	for c, want := range map[Cap]string{0: "CAP_CHOWN", unix.CAP_NET_BIND_SERVICE: "CAP_NET_BIND_SERVICE", unix.CAP_SYS_TIME: "CAP_SYS_TIME",
		unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE", 63: "cap63"} {
		if got := c.String(); got != want {
			t.Errorf("%d: %s, want %s", uint(c), got, want)
		}
	}
}
