package ntp

import (
	"crypto/rand"
	"io"
	"net/netip"

	"github.com/facebook/time/ntp/protocol"
)

// NTS on the NTP path, the server's side (RFC 8915 section 5): a request
// that carries a Unique Identifier, one NTS Cookie, Cookie Placeholders
// and an Authenticator (last) is answered only when the cookie opens under
// one of the server's keys and the authenticator verifies under the C2S
// key inside it. The answer echoes the Unique Identifier and ends with an
// Authenticator under the S2C key that encrypts fresh cookies, one for the
// cookie spent and one per placeholder, as many as fit in the request's
// own length (5.7: no amplification). A cookie that does not open or an
// authenticator that does not verify gets an NTS NAK (kiss code NTSN,
// 5.7), never an unauthenticated time. Requests without NTS fields are
// the Responder's as before, on the same port.

// NTSStats counts NTS traffic of a worker.
type NTSStats struct {
	Requests uint64 // requests with NTS fields
	Answered uint64 // authenticated answers
	NAKs     uint64 // NTS NAKs (cookie or authenticator refused)
	Bad      uint64 // NTS fields out of order, missing or malformed: dropped
	Cookies  uint64 // fresh cookies handed out
}

// NTSServer answers NTS requests with a Responder's time; one per
// worker, not safe for concurrent use (the keys are shared and are).
type NTSServer struct {
	Keys  *CookieKeys
	Rand  io.Reader // nonces of cookies and authenticators; crypto/rand when nil
	Stats NTSStats
}

// ntsFields are the NTS extension fields of a request and where they are.
type ntsFields struct {
	uid, cookie  []byte
	placeholders int
	auth         protocol.ExtensionField
	authAt       int // offset of the authenticator: what it authenticates precedes it
}

// minUID is the shortest Unique Identifier body (RFC 8915 5.3: at least 32
// octets).
const minUID = 32

// maxNTSFields bounds the extension fields a request is read for: a
// request of 64 placeholders is already beyond what any client sends.
const maxNTSFields = 64

// parseNTS reads the extension fields after the header (RFC 7822: type,
// length including the four header octets, a multiple of 4). ok is false
// for a request without NTS fields (answered as plain NTP), bad for NTS
// fields that break the rules of 5.
func parseNTS(req []byte) (f ntsFields, ok, bad bool) {
	off, n := HeaderLen, 0
	for off+4 <= len(req) {
		typ := protocol.ExtensionFieldType(be.Uint16(req[off:]))
		l := int(be.Uint16(req[off+2:]))
		if l < 4 || l%4 != 0 || off+l > len(req) || n >= maxNTSFields {
			return f, ok, ok // not extension fields (a legacy MAC): NTS only if begun
		}
		body := req[off+4 : off+l]
		n++
		switch typ {
		case protocol.UniqueIdentifier:
			if f.uid != nil || len(body) < minUID {
				return f, true, true
			}
			f.uid, ok = body, true
		case protocol.NTSCookie:
			if f.cookie != nil {
				return f, true, true
			}
			f.cookie, ok = body, true
		case protocol.NTSCookiePlaceholder:
			f.placeholders++
			ok = true
		case protocol.NTSAuthenticator:
			f.auth = protocol.ExtensionField{Type: typ, Body: body}
			f.authAt = off
			// 5.6: nothing after the authenticator is authenticated, so
			// nothing may follow it.
			if off+l != len(req) || f.uid == nil || f.cookie == nil {
				return f, true, true
			}
			return f, true, false
		}
		off += l
	}
	return f, ok, ok // NTS fields without an authenticator
}

// MayBeNTS: req is long enough to carry extension fields and of version
// 4, the only one NTS is defined for (RFC 8915 5); other requests are
// plain. An NTS answer's transmit time is under its authenticator, so it
// is taken before the seal, never later (Responder.Stamp).
func MayBeNTS(req []byte) bool { return len(req) > HeaderLen && (req[0]>>3)&7 == 4 }

// Respond answers req as Responder.Respond does, with NTS when req
// carries it; nts reports whether it did (an answer, a NAK or a drop).
func (s *NTSServer) Respond(r *Responder, dst, req []byte, rx uint64, addr netip.Addr, mono int64, h *Header, txNow func() uint64) (rep Reply, isNTS bool) {
	if !MayBeNTS(req) {
		return r.Respond(dst, req, rx, addr, mono, h, txNow), false
	}
	f, ok, bad := parseNTS(req)
	if !ok {
		return r.Respond(dst, req, rx, addr, mono, h, txNow), false
	}
	s.Stats.Requests++
	if bad || len(dst) < len(req) {
		s.Stats.Bad++
		return Reply{}, true
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	alg, c2s, s2c, err := s.Keys.Open(f.cookie)
	if err == nil && alg != protocol.AEADAESSIVCMAC256 {
		err = errAuth // a cookie of an algorithm sitegm never negotiates
	}
	if err == nil {
		_, err = openAuth(f.auth.Body, c2s, req[:f.authAt])
	}
	if err != nil {
		s.Stats.NAKs++
		return Reply{N: s.nak(dst, req, f.uid)}, true
	}
	rep = r.Respond(dst, req, rx, addr, mono, h, txNow)
	if rep.N == 0 {
		return rep, true
	}
	// The reply: the header Respond wrote, the Unique Identifier, then
	// the Authenticator over both, holding the fresh cookies: one for the
	// cookie spent and one per placeholder, as many as keep the reply
	// within the request's length.
	n := rep.N
	n += putEF(dst[n:], protocol.UniqueIdentifier, f.uid)
	var plain []byte
	for i := 0; i < 1+f.placeholders; i++ {
		c, err := s.Keys.Seal(rnd, alg, c2s, s2c)
		if err != nil {
			break
		}
		ef := efLen(len(c))
		if n+4+authLen(len(plain)+ef) > len(req) {
			break
		}
		plain = append(plain, make([]byte, ef)...)
		putEF(plain[len(plain)-ef:], protocol.NTSCookie, c)
		s.Stats.Cookies++
	}
	al := authLen(len(plain))
	if n+4+al > len(dst) {
		s.Stats.Bad++
		return Reply{}, true
	}
	be.PutUint16(dst[n:], uint16(protocol.NTSAuthenticator))
	be.PutUint16(dst[n+2:], uint16(4+al))
	if err := sealAuth(dst[n+4:n+4+al], s2c, dst[:n], plain, rnd); err != nil {
		s.Stats.Bad++
		return Reply{}, true
	}
	s.Stats.Answered++
	rep.N = n + 4 + al
	return rep, true
}

// nak writes an NTS NAK (RFC 8915 5.7): a Kiss-o'-Death with code NTSN
// and the request's Unique Identifier, nothing authenticated, no time.
func (s *NTSServer) nak(dst, req, uid []byte) int {
	n := kod(dst, 4, ModeServer, req[2], be.Uint64(req[40:]))
	copy(dst[12:16], "NTSN")
	return n + putEF(dst[n:], protocol.UniqueIdentifier, uid)
}

// efLen is an extension field's length with a body of n octets, padded
// to a multiple of 4 (RFC 7822 7.5).
func efLen(n int) int { return (4 + n + 3) &^ 3 }

// putEF writes an extension field into dst and returns its length.
func putEF(dst []byte, typ protocol.ExtensionFieldType, body []byte) int {
	l := efLen(len(body))
	be.PutUint16(dst, uint16(typ))
	be.PutUint16(dst[2:], uint16(l))
	copy(dst[4:], body)
	clear(dst[4+len(body) : l])
	return l
}
