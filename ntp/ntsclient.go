package ntp

import (
	"bytes"
	"errors"
	"io"

	"github.com/facebook/time/ntp/protocol"
)

// NTS on the NTP path, the client's side (RFC 8915 5), as chrony's client
// builds it: what `sitegm ntp-query --nts` sends, after NTS-KE.

// NTSSession is what a client holds after NTS-KE: the keys and the
// cookies it has left (each spent once).
type NTSSession struct {
	C2S, S2C []byte
	Cookies  [][]byte
}

// ErrNTSNAK: the server refused the cookie or the authenticator (kiss
// code NTSN): run NTS-KE again.
var ErrNTSNAK = errors.New("NTS NAK: run NTS-KE again")

// NTSRequest writes a client request with transmit timestamp tx into dst
// (a datagram's room): a fresh 32-octet Unique Identifier from rnd,
// the session's next cookie, placeholders for more cookies until the
// session holds 8 again (each as long as the cookie), and the
// authenticator under C2S. It returns the request's length and its
// Unique Identifier.
func (s *NTSSession) NTSRequest(dst []byte, tx uint64, rnd io.Reader) (int, []byte, error) {
	if len(s.Cookies) == 0 {
		return 0, nil, errors.New("no NTS cookie left: run NTS-KE again")
	}
	cookie := s.Cookies[0]
	s.Cookies = s.Cookies[1:]
	uid := make([]byte, minUID)
	if _, err := io.ReadFull(rnd, uid); err != nil {
		return 0, nil, err
	}
	ph := max(0, 7-len(s.Cookies))
	need := HeaderLen + efLen(len(uid)) + (1+ph)*efLen(len(cookie)) + 4 + authLen(0)
	if len(dst) < need {
		return 0, nil, errors.New("NTS request larger than its buffer")
	}
	n := Request(dst, tx)
	n += putEF(dst[n:], protocol.UniqueIdentifier, uid)
	n += putEF(dst[n:], protocol.NTSCookie, cookie)
	for range ph {
		l := efLen(len(cookie))
		be.PutUint16(dst[n:], uint16(protocol.NTSCookiePlaceholder))
		be.PutUint16(dst[n+2:], uint16(l))
		clear(dst[n+4 : n+l])
		n += l
	}
	al := authLen(0)
	be.PutUint16(dst[n:], uint16(protocol.NTSAuthenticator))
	be.PutUint16(dst[n+2:], uint16(4+al))
	if err := sealAuth(dst[n+4:n+4+al], s.C2S, dst[:n], nil, rnd); err != nil {
		return 0, nil, err
	}
	return n + 4 + al, uid, nil
}

// ParseNTSReply checks an answer to the request that carried tx and uid:
// its Unique Identifier, its authenticator under S2C (the last field);
// the cookies inside are added to the session; then the header, as
// ParseReply reads it (a KissError from an authenticated answer is the
// server's). An NTS NAK is ErrNTSNAK.
func (s *NTSSession) ParseNTSReply(b []byte, tx uint64, uid []byte) (Sample, error) {
	if len(b) >= HeaderLen && b[1] == 0 && string(b[12:16]) == "NTSN" {
		if f, _, _ := parseNTS(b); bytes.Equal(f.uid, uid) {
			return Sample{}, ErrNTSNAK
		}
	}
	f, ok, bad := parseNTSReply(b)
	if !ok || bad || !bytes.Equal(f.uid, uid) {
		return Sample{}, errors.New("NTS reply without its Unique Identifier or authenticator")
	}
	plain, err := openAuth(f.auth.Body, s.S2C, b[:f.authAt])
	if err != nil {
		return Sample{}, err
	}
	for off := 0; off+4 <= len(plain); {
		l := int(be.Uint16(plain[off+2:]))
		if l < 4 || off+l > len(plain) {
			break
		}
		if protocol.ExtensionFieldType(be.Uint16(plain[off:])) == protocol.NTSCookie && len(s.Cookies) < 8 {
			s.Cookies = append(s.Cookies, append([]byte(nil), plain[off+4:off+l]...))
		}
		off += l
	}
	// Authenticated: what the header says (a kiss code too) is the
	// server's.
	return ParseReply(b, tx)
}

// parseNTSReply finds a reply's Unique Identifier and authenticator (the
// last field); a reply has no cookie outside the authenticator.
func parseNTSReply(b []byte) (f ntsFields, ok, bad bool) {
	off := HeaderLen
	for off+4 <= len(b) {
		typ := protocol.ExtensionFieldType(be.Uint16(b[off:]))
		l := int(be.Uint16(b[off+2:]))
		if l < 4 || l%4 != 0 || off+l > len(b) {
			return f, ok, true
		}
		switch typ {
		case protocol.UniqueIdentifier:
			f.uid, ok = b[off+4:off+l], true
		case protocol.NTSAuthenticator:
			f.auth = protocol.ExtensionField{Type: typ, Body: b[off+4 : off+l]}
			f.authAt = off
			return f, ok, off+l != len(b)
		}
		off += l
	}
	return f, ok, true
}
