package ntpnet

import (
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"sitegm/event"
	"sitegm/ntp"
)

// KeyRing keeps the NTS server keys (ntp.CookieKeys) in a file of the
// state directory, mode 0600 (whoever reads it can forge every client's
// cookies), so that a restart keeps every issued cookie valid; a new key
// every Every, Kept of them.
type KeyRing struct {
	Keys  *ntp.CookieKeys
	path  string
	every time.Duration
}

// OpenKeyRing loads the ring at path, or starts one (and saves it) when
// there is none or it cannot be read (said in the events: clients then
// run NTS-KE again).
func OpenKeyRing(path string, every time.Duration, kept int, now time.Time) (*KeyRing, []event.Event) {
	r := &KeyRing{Keys: ntp.NewCookieKeys(kept), path: path, every: every}
	var l event.List
	b, err := os.ReadFile(path)
	if err == nil {
		err = r.Keys.UnmarshalBinary(b)
	}
	if age, n := r.Keys.Age(now); err == nil && n > 0 {
		l.Emit(slog.LevelInfo, "nts_keys", "NTS server keys loaded", "nts_key_file", path, "nts_keys", n, "nts_key_age", age.Round(time.Second).String())
		return r, append(l.Take(), r.Tick(now)...)
	}
	if err != nil && !os.IsNotExist(err) {
		l.Emit(slog.LevelWarn, "nts_keys", "NTS server keys unreadable: new keys (clients run NTS-KE again)", "nts_key_file", path, "error", err.Error())
	}
	r.Keys = ntp.NewCookieKeys(kept)
	return r, append(l.Take(), r.rotate(now)...)
}

// Tick rotates the keys when the newest is Every old (call it about once
// a minute).
func (r *KeyRing) Tick(now time.Time) []event.Event {
	if !r.Keys.Due(now, r.every) {
		return nil
	}
	return r.rotate(now)
}

func (r *KeyRing) rotate(now time.Time) []event.Event {
	var l event.List
	if err := r.Keys.Rotate(now, rand.Reader); err != nil {
		l.Emit(slog.LevelError, "nts_keys", "NTS server key rotation failed", "error", err.Error())
		return l.Take()
	}
	if err := r.save(); err != nil {
		l.Emit(slog.LevelWarn, "nts_keys", "NTS server keys not saved: a restart will make clients run NTS-KE again",
			"nts_key_file", r.path, "error", err.Error())
		return l.Take()
	}
	_, n := r.Keys.Age(now)
	l.Emit(slog.LevelInfo, "nts_key_rotated", "NTS server key rotated", "nts_key_file", r.path, "nts_keys", n)
	return l.Take()
}

// save writes the ring atomically (a temporary file renamed over it).
func (r *KeyRing) save() error {
	b, _ := r.Keys.MarshalBinary()
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}
