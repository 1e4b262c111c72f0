// Package claim makes sure one sitegm, and only one, serves a thing: a
// port on an interface, a status socket, a receiver's serial device.
//
// A claim is a listening Unix socket in the abstract namespace
// ("@sitegm/NAME"). The abstract namespace belongs to the network
// namespace, which is exactly the scope of UDP ports and interfaces, and
// it needs no file: a claim vanishes with the process that held it, however
// that process ended (a crash leaves nothing stale to clean up). A second
// claimant learns who holds the name from the socket's peer credentials.
//
// Why not rely on the sockets themselves: every sitegm socket is opened
// with SO_REUSEPORT, and the kernel lets any process of the same user join
// such a group. A second daemon started on the same configuration got half
// of the NTP requests (answered from its own, unlocked clock) and took the
// status socket over.
package claim

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Held says another process holds the claim.
type Held struct {
	Name string
	PID  int32 // 0 when the holder could not be asked
}

func (h *Held) Error() string {
	who := "another process"
	if h.PID > 0 {
		who = fmt.Sprintf("process %d", h.PID)
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", h.PID)); err == nil {
			who = fmt.Sprintf("%s (pid %d)", strings.TrimSpace(string(comm)), h.PID)
		}
	}
	return fmt.Sprintf("%s already holds %s", who, h.Name)
}

// Claim is a held name.
type Claim struct {
	Name string
	fd   int
}

// prefix keeps sitegm's names apart from other programs'.
const prefix = "sitegm/"

// Take claims name. It fails with *Held when another process holds it.
func Take(name string) (*Claim, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	addr := &unix.SockaddrUnix{Name: "@" + sockName(name)}
	if err := unix.Bind(fd, addr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, &Held{Name: name, PID: holder(addr)}
		}
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	// Listening lets the next claimant connect and read our credentials;
	// nobody ever accepts, the kernel's backlog answers the connect.
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	return &Claim{Name: name, fd: fd}, nil
}

// sockName is the abstract socket's name: the claim's own, or a digest of
// it where a long path would not fit sun_path (108 bytes).
func sockName(name string) string {
	if len(prefix)+len(name) <= 100 {
		return prefix + name
	}
	h := sha256.Sum256([]byte(name))
	return prefix + "sha256/" + hex.EncodeToString(h[:])
}

// holder asks the socket holding addr for its process id.
func holder(addr *unix.SockaddrUnix) int32 {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, addr); err != nil && !errors.Is(err, unix.EAGAIN) {
		return 0
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0
	}
	return cred.Pid
}

// Release gives the name up.
func (c *Claim) Release() {
	if c != nil && c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// Set holds several claims and releases them together.
type Set struct{ claims map[string]*Claim }

// Ensure claims every name in names not held yet by the set. On the first
// failure it releases what it took in this call and returns the error.
func (s *Set) Ensure(names []string) error {
	if s.claims == nil {
		s.claims = map[string]*Claim{}
	}
	var taken []string
	for _, n := range names {
		if _, ok := s.claims[n]; ok {
			continue
		}
		c, err := Take(n)
		if err != nil {
			for _, t := range taken {
				s.claims[t].Release()
				delete(s.claims, t)
			}
			return err
		}
		s.claims[n] = c
		taken = append(taken, n)
	}
	return nil
}

// Keep releases every claim whose name is not in names.
func (s *Set) Keep(names []string) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for n, c := range s.claims {
		if !want[n] {
			c.Release()
			delete(s.claims, n)
		}
	}
}

// Release releases every claim.
func (s *Set) Release() { s.Keep(nil) }
