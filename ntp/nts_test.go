package ntp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/facebook/time/ntp/protocol"
	"github.com/facebook/time/ntp/protocol/nts"
	"github.com/facebook/time/ntp/protocol/nts/aessiv"
)

// session is what a client holds after NTS-KE: the algorithm, both keys
// and cookies sealed by the server's keys.
type session struct {
	c2s, s2c []byte
	cookie   []byte
}

func newKeys(t testing.TB) *CookieKeys {
	k := NewCookieKeys(3)
	if err := k.Rotate(time.Unix(1e9, 0), rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

func newSession(t testing.TB, k *CookieKeys) session {
	s := session{c2s: make([]byte, 32), s2c: make([]byte, 32)}
	rand.Read(s.c2s)
	rand.Read(s.s2c)
	var err error
	if s.cookie, err = k.Seal(rand.Reader, protocol.AEADAESSIVCMAC256, s.c2s, s.s2c); err != nil {
		t.Fatal(err)
	}
	return s
}

// chronyRequest builds a request as chrony's client does (nts_ntp_client.c:
// a 32-octet Unique Identifier, the cookie, placeholders of the cookie's
// length, an authenticator with a 16-octet nonce over everything before
// it), with facebook/time's AES-SIV directly: independent of the server's
// sealing.
func chronyRequest(t testing.TB, s session, placeholders int) (req, uid []byte) {
	uid = make([]byte, 32)
	rand.Read(uid)
	req = request(4, ModeClient, 0, 0, 0x1122334455667788)
	ef := func(typ protocol.ExtensionFieldType, body []byte) {
		b, err := protocol.ExtensionField{Type: typ, Body: body}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		req = append(req, b...)
	}
	ef(protocol.UniqueIdentifier, uid)
	ef(protocol.NTSCookie, s.cookie)
	for range placeholders {
		ef(protocol.NTSCookiePlaceholder, make([]byte, len(s.cookie)))
	}
	siv, _ := aessiv.NewAESSIV(s.c2s)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	ct, err := siv.Seal(nil, nil, req, nonce)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte{0, 16, 0, byte(len(ct))}
	ef(protocol.NTSAuthenticator, append(append(body, nonce...), ct...))
	return req, uid
}

// chronyVerify checks an answer as chrony's client does (nts_ntp_client.c,
// nts_ntp_auth.c): the Unique Identifier echoed, the authenticator last,
// a nonce of at least one octet and the padding 5.6 asks, verified under
// S2C; it returns the fresh cookies.
func chronyVerify(t testing.TB, b []byte, s session, uid []byte) (p protocol.Packet, cookies [][]byte) {
	t.Helper()
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	efs := p.ExtensionFields
	if len(efs) != 2 || efs[0].Type != protocol.UniqueIdentifier || !bytes.Equal(efs[0].Body, uid) || efs[1].Type != protocol.NTSAuthenticator {
		t.Fatalf("fields %+v", efs)
	}
	body := efs[1].Body
	nl, cl := int(body[0])<<8|int(body[1]), int(body[2])<<8|int(body[3])
	if nl < 1 || cl < 16 || 4+16+pad4(cl) > len(body) {
		t.Fatalf("chrony refuses: nonce %d, ciphertext %d, body %d", nl, cl, len(body))
	}
	siv, _ := aessiv.NewAESSIV(s.s2c)
	authAt := len(b) - 4 - len(body)
	pt, err := siv.Open(nil, body[4+pad4(nl):4+pad4(nl)+cl], b[:authAt], body[4:4+nl])
	if err != nil {
		t.Fatalf("the answer does not verify under S2C: %v", err)
	}
	inner, err := protocol.ParseExtensionFields(pt)
	if err != nil {
		t.Fatal(err)
	}
	for _, ef := range inner {
		if ef.Type == protocol.NTSCookie {
			cookies = append(cookies, ef.Body)
		}
	}
	return p, cookies
}

// ntsRequest builds a request as facebook/time's NTS client does (no
// nonce in its authenticator).
func ntsRequest(t testing.TB, s session, placeholders int) (req, uid []byte) {
	uid = make([]byte, 32)
	rand.Read(uid)
	base := protocol.Packet{Settings: 4<<3 | ModeClient, Poll: 6, TxTimeSec: 0x11223344, TxTimeFrac: 0x55667788}
	req, err := nts.BuildNTSRequest(base, nts.RequestParams{AEAD: protocol.AEADAESSIVCMAC256, C2S: s.c2s,
		Cookie: s.cookie, UniqueID: uid, Placeholders: placeholders})
	if err != nil {
		t.Fatal(err)
	}
	return req, uid
}

func TestNTSAnswer(t *testing.T) {
	k := newKeys(t)
	srv := &NTSServer{Keys: k}
	r := NewResponder(Config{})
	s := newSession(t, k)
	req, uid := chronyRequest(t, s, 3)
	dst := make([]byte, 2048)
	rep, isNTS := srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1000))
	if !isNTS || rep.N == 0 {
		t.Fatalf("no NTS answer: %+v %+v", rep, srv.Stats)
	}
	if rep.N > len(req) {
		t.Fatalf("answer of %d bytes to a request of %d: amplification", rep.N, len(req))
	}
	p, cookies := chronyVerify(t, dst[:rep.N], s, uid)
	orig := uint64(p.OrigTimeSec)<<32 | uint64(p.OrigTimeFrac)
	if orig != 0x1122334455667788 || p.Stratum != 1 || uint64(p.RxTimeSec)<<32|uint64(p.RxTimeFrac) != rxT {
		t.Fatalf("header %+v", p)
	}
	// One cookie for the one spent, one per placeholder: all of them fit.
	if len(cookies) != 4 || srv.Stats.Answered != 1 || srv.Stats.Cookies != 4 {
		t.Fatalf("%d cookies, stats %+v", len(cookies), srv.Stats)
	}
	for _, c := range cookies {
		_, c2s, s2c, err := k.Open(c)
		if err != nil || !bytes.Equal(c2s, s.c2s) || !bytes.Equal(s2c, s.s2c) {
			t.Fatalf("a fresh cookie does not carry the session: %v", err)
		}
	}
	// Without placeholders the answer still fits one cookie.
	req, uid = chronyRequest(t, s, 0)
	rep, _ = srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1000))
	if _, cookies = chronyVerify(t, dst[:rep.N], s, uid); len(cookies) != 1 || rep.N > len(req) {
		t.Fatalf("no placeholders: %d cookies, %d/%d bytes", len(cookies), rep.N, len(req))
	}
	// facebook/time's client seals with no nonce: answered too (its own
	// verifier wants no nonce back, so the answer is read as chrony does).
	req, uid = ntsRequest(t, s, 2)
	rep, _ = srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1000))
	if _, cookies = chronyVerify(t, dst[:rep.N], s, uid); len(cookies) < 1 || rep.N > len(req) {
		t.Fatalf("facebook/time's request: %d cookies, %d/%d bytes", len(cookies), rep.N, len(req))
	}
}

// isNAK checks an NTS NAK: stratum 0, kiss code NTSN, the request's
// Unique Identifier, no authenticator and no time.
func isNAK(t *testing.T, b, uid []byte) {
	t.Helper()
	var p protocol.Packet
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if p.Stratum != 0 || string(b[12:16]) != "NTSN" || p.RxTimeSec != p.OrigTimeSec || len(p.ExtensionFields) != 1 ||
		p.ExtensionFields[0].Type != protocol.UniqueIdentifier || !bytes.Equal(p.ExtensionFields[0].Body, uid) {
		t.Fatalf("not an NTS NAK: %+v", p)
	}
}

func TestNTSNAK(t *testing.T) {
	k := newKeys(t)
	srv := &NTSServer{Keys: k}
	r := NewResponder(Config{})
	dst := make([]byte, 2048)

	// A cookie of another server (keys it never had).
	other := newSession(t, newKeys(t))
	req, uid := chronyRequest(t, other, 1)
	rep, _ := srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1))
	isNAK(t, dst[:rep.N], uid)

	// A good cookie, the request changed in flight (its transmit time).
	s := newSession(t, k)
	req, uid = chronyRequest(t, s, 1)
	req[43] ^= 1
	rep, _ = srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1))
	isNAK(t, dst[:rep.N], uid)

	// Keys rotated out: a cookie outlives the ring only as long as it keeps
	// the key (3 here).
	req, uid = chronyRequest(t, s, 1)
	for i := 1; i <= 2; i++ {
		k.Rotate(time.Unix(1e9+int64(i)*86400, 0), rand.Reader)
	}
	if rep, _ = srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1)); dst[12] == 'N' {
		t.Fatal("a cookie two rotations old was refused with three keys kept")
	}
	k.Rotate(time.Unix(1e9+3*86400, 0), rand.Reader)
	rep, _ = srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1))
	isNAK(t, dst[:rep.N], uid)
	if srv.Stats.NAKs != 3 || srv.Stats.Answered != 1 {
		t.Fatalf("stats %+v", srv.Stats)
	}
}

// The ring saved and loaded again (a restart) opens the cookies issued
// before.
func TestCookieKeysSurviveRestart(t *testing.T) {
	k := newKeys(t)
	k.Rotate(time.Unix(1e9+86400, 0), rand.Reader)
	s := newSession(t, k)
	b, _ := k.MarshalBinary()
	k2 := NewCookieKeys(3)
	if err := k2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if _, c2s, _, err := k2.Open(s.cookie); err != nil || !bytes.Equal(c2s, s.c2s) {
		t.Fatalf("after a restart: %v", err)
	}
	if age, n := k2.Age(time.Unix(1e9+86400+60, 0)); age != time.Minute || n != 2 {
		t.Fatalf("age %v, %d keys", age, n)
	}
	if !k2.Due(time.Unix(1e9+2*86400, 0), 24*time.Hour) || k2.Due(time.Unix(1e9+86400+60, 0), 24*time.Hour) {
		t.Fatal("rotation schedule")
	}
	for _, bad := range [][]byte{nil, []byte("SGNTSK1\n\x00"), append([]byte(keysMagic), make([]byte, 14)...)} {
		if err := NewCookieKeys(3).UnmarshalBinary(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Plain NTP on the same port is the Responder's; NTS fields out of the
// rules are dropped, never answered without authentication.
func TestNTSPlainAndBad(t *testing.T) {
	k := newKeys(t)
	srv := &NTSServer{Keys: k}
	r := NewResponder(Config{})
	dst := make([]byte, 2048)
	if rep, isNTS := srv.Respond(r, dst, request(4, ModeClient, 0, 0, 1), rxT, client, 0, &hdr, txAt(rxT+1)); isNTS || rep.N != HeaderLen {
		t.Fatalf("plain request: %+v nts %v", rep, isNTS)
	}
	s := newSession(t, k)
	req, _ := chronyRequest(t, s, 0)
	// Something after the authenticator.
	bad := append(append([]byte(nil), req...), 0x01, 0x04, 0, 8, 0, 0, 0, 0)
	if rep, isNTS := srv.Respond(r, dst, bad, rxT, client, 0, &hdr, txAt(rxT+1)); !isNTS || rep.N != 0 {
		t.Fatalf("a field after the authenticator: %+v", rep)
	}
	// No authenticator at all.
	if rep, isNTS := srv.Respond(r, dst, req[:HeaderLen+36], rxT, client, 0, &hdr, txAt(rxT+1)); !isNTS || rep.N != 0 {
		t.Fatalf("no authenticator: %+v %v", rep, isNTS)
	}
	if srv.Stats.Bad != 2 || srv.Stats.Answered != 0 {
		t.Fatalf("stats %+v", srv.Stats)
	}
}

// BenchmarkNTSRespond is the cost of an authenticated answer (one
// cookie opened, one authenticator checked, one cookie sealed, one
// authenticator sealed), beside BenchmarkRespond's plain one.
func BenchmarkNTSRespond(b *testing.B) {
	k := newKeys(b)
	srv := &NTSServer{Keys: k}
	r := NewResponder(Config{})
	s := newSession(b, k)
	req, _ := chronyRequest(b, s, 0)
	dst := make([]byte, 2048)
	tx := txAt(rxT + 1)
	for b.Loop() {
		srv.Respond(r, dst, req, rxT, client, 0, &hdr, tx)
	}
}

func FuzzNTSRespond(f *testing.F) {
	k := newKeys(f)
	s := newSession(f, k)
	for _, ph := range []int{0, 1, 7} {
		req, _ := chronyRequest(f, s, ph)
		f.Add(req)
	}
	req, _ := ntsRequest(f, s, 1)
	f.Add(req)
	f.Add(request(4, ModeClient, 0, 0, 1))
	f.Add(append(request(4, ModeClient, 0, 0, 1), 0x01, 0x04, 0, 4))
	srv := &NTSServer{Keys: k}
	r := NewResponder(Config{})
	f.Fuzz(func(t *testing.T, req []byte) {
		dst := make([]byte, max(len(req), HeaderLen)+64)
		rep, _ := srv.Respond(r, dst, req, rxT, client, 0, &hdr, txAt(rxT+1))
		if rep.N > len(req) {
			t.Fatalf("reply of %d bytes to a request of %d", rep.N, len(req))
		}
	})
}

// sitegm's own NTS client (ntp-query --nts) against the server: answers
// verified, cookies replenished to 8, a NAK recognised, a reply changed
// in flight refused.
func TestNTSClient(t *testing.T) {
	k := newKeys(t)
	srv := &NTSServer{Keys: k}
	r := NewResponder(Config{})
	s := newSession(t, k)
	sess := &NTSSession{C2S: s.c2s, S2C: s.s2c, Cookies: [][]byte{s.cookie}}
	req := make([]byte, 1500)
	dst := make([]byte, 1500)
	n, uid, err := sess.NTSRequest(req, 0x1122334455667788, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := srv.Respond(r, dst, req[:n], rxT, client, 0, &hdr, txAt(rxT+1000))
	smp, err := sess.ParseNTSReply(dst[:rep.N], 0x1122334455667788, uid)
	if err != nil || smp.Stratum != 1 || len(sess.Cookies) != 8 {
		t.Fatalf("reply: %v, stratum %d, %d cookies", err, smp.Stratum, len(sess.Cookies))
	}
	// Changed in flight: refused.
	n, uid, _ = sess.NTSRequest(req, 2, rand.Reader)
	rep, _ = srv.Respond(r, dst, req[:n], rxT, client, 0, &hdr, txAt(rxT+1000))
	dst[33] ^= 1
	if _, err := sess.ParseNTSReply(dst[:rep.N], 2, uid); err == nil {
		t.Fatal("a reply changed in flight was taken")
	}
	// A cookie of keys rotated out: a NAK.
	for i := 1; i <= 3; i++ {
		k.Rotate(time.Unix(1e9+int64(i)*86400, 0), rand.Reader)
	}
	n, uid, _ = sess.NTSRequest(req, 3, rand.Reader)
	rep, _ = srv.Respond(r, dst, req[:n], rxT, client, 0, &hdr, txAt(rxT+1000))
	if _, err := sess.ParseNTSReply(dst[:rep.N], 3, uid); !errors.Is(err, ErrNTSNAK) {
		t.Fatalf("a NAK: %v", err)
	}
}

func FuzzParseNTSReply(f *testing.F) {
	k := newKeys(f)
	s := newSession(f, k)
	sess := &NTSSession{C2S: s.c2s, S2C: s.s2c, Cookies: [][]byte{s.cookie}}
	req := make([]byte, 1500)
	dst := make([]byte, 1500)
	n, uid, _ := sess.NTSRequest(req, 7, rand.Reader)
	rep, _ := (&NTSServer{Keys: k}).Respond(NewResponder(Config{}), dst, req[:n], rxT, client, 0, &hdr, txAt(rxT+1))
	f.Add(append([]byte(nil), dst[:rep.N]...))
	f.Add(request(4, ModeServer, 0, 0, 7))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &NTSSession{C2S: s.c2s, S2C: s.s2c}
		if _, err := c.ParseNTSReply(b, 7, uid); err == nil && len(c.Cookies) > 8 {
			t.Fatalf("%d cookies kept", len(c.Cookies))
		}
	})
}
