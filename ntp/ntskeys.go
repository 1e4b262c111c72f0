package ntp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/facebook/time/ntp/ntske"
	"github.com/facebook/time/ntp/protocol"
)

// CookieKeys are the server keys NTS cookies are sealed under (RFC 8915
// section 6: the cookie's format is the server's own). A cookie is
// facebook/time's envelope, [key ID][nonce][AES-SIV-CMAC-512 of C2S||S2C];
// this ring decides which keys exist: a new one at each rotation, the
// last few kept so that cookies issued before a rotation still open (a
// client that polls gets fresh cookies with every answer; one silent for
// longer than the ring covers gets an NTS NAK and runs NTS-KE again). The
// ring is saved by its owner (MarshalBinary) so a restart keeps every
// cookie valid. Safe for concurrent use: the NTP workers open and seal
// while the daemon rotates.
type CookieKeys struct {
	mu   sync.RWMutex
	keys []cookieKey // oldest first; the last seals
	keep int
}

type cookieKey struct {
	id      uint32
	created time.Time
	key     []byte
}

// ErrCookieKey: the cookie's key is not in the ring (rotated out, another
// server's, or forged).
var ErrCookieKey = errors.New("NTS cookie key unknown or expired")

// NewCookieKeys is an empty ring keeping keep keys (at least 2).
func NewCookieKeys(keep int) *CookieKeys { return &CookieKeys{keep: max(keep, 2)} }

// Rotate adds a fresh key, read from rnd (crypto/rand.Reader), and drops
// the oldest beyond the ring's size.
func (k *CookieKeys) Rotate(now time.Time, rnd io.Reader) error {
	key := make([]byte, ntske.MasterKeyLen())
	if _, err := io.ReadFull(rnd, key); err != nil {
		return fmt.Errorf("NTS server key: %w", err)
	}
	var idb [4]byte
	if _, err := io.ReadFull(rnd, idb[:]); err != nil {
		return fmt.Errorf("NTS server key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	id := binary.BigEndian.Uint32(idb[:])
	if n := len(k.keys); n > 0 {
		id = k.keys[n-1].id + 1 // unique within the ring, not guessable at the start
	}
	k.keys = append(k.keys, cookieKey{id: id, created: now, key: key})
	if len(k.keys) > k.keep {
		k.keys = append([]cookieKey(nil), k.keys[len(k.keys)-k.keep:]...)
	}
	return nil
}

// Due reports whether the newest key is every old at now (or there is
// none): time to Rotate.
func (k *CookieKeys) Due(now time.Time, every time.Duration) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys) == 0 || now.Sub(k.keys[len(k.keys)-1].created) >= every
}

// Age is how old the newest key is at now, and how many keys the ring
// holds.
func (k *CookieKeys) Age(now time.Time) (time.Duration, int) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.keys) == 0 {
		return 0, 0
	}
	return now.Sub(k.keys[len(k.keys)-1].created), len(k.keys)
}

// Seal makes a cookie of the session keys under the newest key; rnd gives
// its nonce.
func (k *CookieKeys) Seal(rnd io.Reader, alg protocol.AEADAlgorithm, c2s, s2c []byte) ([]byte, error) {
	k.mu.RLock()
	if len(k.keys) == 0 {
		k.mu.RUnlock()
		return nil, ErrCookieKey
	}
	cur := k.keys[len(k.keys)-1]
	k.mu.RUnlock()
	return ntske.SealEnvelope(rnd, cur.id, cur.key, alg, c2s, s2c)
}

// Open recovers the session's algorithm and keys from a cookie.
func (k *CookieKeys) Open(cookie []byte) (protocol.AEADAlgorithm, []byte, []byte, error) {
	c, err := ntske.ParseCookie(cookie)
	if err != nil {
		return 0, nil, nil, err
	}
	k.mu.RLock()
	var key []byte
	for _, ck := range k.keys {
		if ck.id == c.KeyID {
			key = ck.key
		}
	}
	k.mu.RUnlock()
	if key == nil {
		return 0, nil, nil, ErrCookieKey
	}
	return c.Open(key)
}

// keysMagic starts the saved ring (version 1).
const keysMagic = "SGNTSK1\n"

// MarshalBinary is the ring as its owner saves it (mode 0600: whoever
// reads it can forge every client's cookies): the magic, then per key its
// ID, creation (Unix ns) and the key.
func (k *CookieKeys) MarshalBinary() ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	b := []byte(keysMagic)
	for _, ck := range k.keys {
		b = binary.BigEndian.AppendUint32(b, ck.id)
		b = binary.BigEndian.AppendUint64(b, uint64(ck.created.UnixNano()))
		b = binary.BigEndian.AppendUint16(b, uint16(len(ck.key)))
		b = append(b, ck.key...)
	}
	return b, nil
}

// UnmarshalBinary restores a saved ring (at most keep keys, the newest).
func (k *CookieKeys) UnmarshalBinary(b []byte) error {
	if len(b) < len(keysMagic) || string(b[:len(keysMagic)]) != keysMagic {
		return errors.New("NTS server keys: not a sitegm key file")
	}
	b = b[len(keysMagic):]
	var keys []cookieKey
	for len(b) > 0 {
		if len(b) < 14 {
			return errors.New("NTS server keys: truncated")
		}
		id, ns, n := binary.BigEndian.Uint32(b), int64(binary.BigEndian.Uint64(b[4:])), int(binary.BigEndian.Uint16(b[12:]))
		b = b[14:]
		if n != ntske.MasterKeyLen() || len(b) < n {
			return errors.New("NTS server keys: a key of the wrong length")
		}
		keys = append(keys, cookieKey{id: id, created: time.Unix(0, ns), key: append([]byte(nil), b[:n]...)})
		b = b[n:]
	}
	if len(keys) > k.keep {
		keys = keys[len(keys)-k.keep:]
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}
