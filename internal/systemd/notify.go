// Package systemd speaks the service manager's notification protocol
// (sd_notify(3)): READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 as
// datagrams to $NOTIFY_SOCKET. Outside systemd every call is a no-op.
package systemd

import (
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends one notification; it returns false when there is no
// service manager to tell.
func Notify(state string) bool {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err == nil
}

// WatchdogInterval is how often WATCHDOG=1 must be sent (half of
// WatchdogSec, as sd_watchdog_enabled(3) advises), zero when the watchdog
// is off or meant for another process.
func WatchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}
