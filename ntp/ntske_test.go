package ntp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/facebook/time/ntp/ntske"
	"github.com/facebook/time/ntp/protocol"
)

// selfSigned is a certificate for "sitegm.test".
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sitegm.test"},
		DNSNames: []string{"sitegm.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// keExchange runs one NTS-KE exchange over a pipe: the server side with
// KEReadRequest and KEAnswer, the client side writing req and returning
// the records it read and its own view of the session keys.
func keExchange(t *testing.T, keys *CookieKeys, req []ntske.Record) (resp []ntske.Record, c2s, s2c []byte) {
	cert, pool := selfSigned(t)
	a, b := net.Pipe()
	srvDone := make(chan error, 1)
	go func() {
		s := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"ntske/1"}})
		defer s.Close()
		recs, err := KEReadRequest(s)
		if err != nil {
			srvDone <- err
			return
		}
		cs := s.ConnectionState()
		out, _ := KEAnswer(recs, keys, rand.Reader, cs.ExportKeyingMaterial, "", 0)
		b, _ := ntske.MarshalRecords(out)
		_, err = s.Write(b)
		srvDone <- err
	}()
	c := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "sitegm.test", NextProtos: []string{"ntske/1"}, MinVersion: tls.VersionTLS13})
	defer c.Close()
	wire, _ := ntske.MarshalRecords(req)
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatal(err)
	}
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	if resp, err = ntske.Parse(all); err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	if cs.NegotiatedProtocol != "ntske/1" {
		t.Fatalf("ALPN %q", cs.NegotiatedProtocol)
	}
	c2s, _ = cs.ExportKeyingMaterial(KEExporterLabel, KEExporterContext(protocol.AEADAESSIVCMAC256, false), 32)
	s2c, _ = cs.ExportKeyingMaterial(KEExporterLabel, KEExporterContext(protocol.AEADAESSIVCMAC256, true), 32)
	return resp, c2s, s2c
}

// chronyKE is the request chrony's client sends (nts_ke_client.c): NTPv4,
// AES-SIV-CMAC-256 only, End of Message, all critical.
func chronyKE() []ntske.Record {
	np := ntske.NewNextProtocol(ntske.NextProtocolNTPv4)
	al := ntske.NewAEADAlgorithm(uint16(protocol.AEADAESSIVCMAC256))
	al.Critical = true
	return []ntske.Record{np, al, ntske.NewEndOfMessage()}
}

func TestKEAnswer(t *testing.T) {
	keys := newKeys(t)
	resp, c2s, s2c := keExchange(t, keys, chronyKE())
	var cookies [][]byte
	var np, alg, eom bool
	for _, r := range resp {
		switch r.Type {
		case ntske.RecordNextProtocol:
			ids, _ := ntske.ParseUint16s(r.Body)
			np = len(ids) == 1 && ids[0] == 0
		case ntske.RecordAEADAlgorithm:
			ids, _ := ntske.ParseUint16s(r.Body)
			alg = len(ids) == 1 && ids[0] == 15
		case ntske.RecordNewCookie:
			cookies = append(cookies, r.Body)
		case ntske.RecordEndOfMessage:
			eom = true
		case ntske.RecordError:
			t.Fatalf("error record %v", r.Body)
		}
	}
	if !np || !alg || !eom || len(cookies) != KECookies {
		t.Fatalf("response %+v", resp)
	}
	// Every cookie carries the keys the client derived itself from the
	// TLS session, and a request with one of them is answered.
	for _, c := range cookies {
		_, gc2s, gs2c, err := keys.Open(c)
		if err != nil || !bytes.Equal(gc2s, c2s) || !bytes.Equal(gs2c, s2c) {
			t.Fatalf("cookie: %v", err)
		}
	}
	s := session{c2s: c2s, s2c: s2c, cookie: cookies[0]}
	req, uid := chronyRequest(t, s, 1)
	dst := make([]byte, 2048)
	rep, _ := (&NTSServer{Keys: keys}).Respond(NewResponder(Config{}), dst, req, rxT, client, 0, &hdr, txAt(rxT+1))
	chronyVerify(t, dst[:rep.N], s, uid)
}

// Requests sitegm does not serve get an Error record, never cookies.
func TestKERefused(t *testing.T) {
	keys := newKeys(t)
	export := func(string, []byte, int) ([]byte, error) { return make([]byte, 32), nil }
	gcm := ntske.NewAEADAlgorithm(uint16(protocol.AEADAES128GCMSIV))
	unknown := ntske.Record{Critical: true, Type: 0x7000}
	for name, req := range map[string][]ntske.Record{
		"no NTPv4":          {ntske.NewNextProtocol(7), chronyKE()[1], ntske.NewEndOfMessage()},
		"no SIV-CMAC-256":   {chronyKE()[0], gcm, ntske.NewEndOfMessage()},
		"no end of message": chronyKE()[:2],
		"unknown critical":  append([]ntske.Record{unknown}, chronyKE()...),
		"two protocols":     append([]ntske.Record{chronyKE()[0]}, chronyKE()...),
	} {
		out, res := KEAnswer(req, keys, rand.Reader, export, "", 0)
		if res != KERefused || len(out) != 2 || out[0].Type != ntske.RecordError {
			t.Errorf("%s: %v %+v", name, res, out)
		}
	}
	out, res := KEAnswer(chronyKE(), keys, rand.Reader, func(string, []byte, int) ([]byte, error) { return nil, errors.New("no") }, "", 0)
	if res != KEInternal || out[0].Type != ntske.RecordError {
		t.Errorf("exporter failure: %v %+v", res, out)
	}
	// A request longer than 1 KiB is not read to its end.
	long, _ := ntske.MarshalRecords([]ntske.Record{{Type: 0x100, Body: make([]byte, 2000)}, ntske.NewEndOfMessage()})
	if _, err := KEReadRequest(bytes.NewReader(long)); !errors.Is(err, errKETooLong) {
		t.Errorf("long request: %v", err)
	}
}

func FuzzKERequest(f *testing.F) {
	b, _ := ntske.MarshalRecords(chronyKE())
	f.Add(b)
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 3, 0})
	keys := newKeys(f)
	export := func(string, []byte, int) ([]byte, error) { return make([]byte, 32), nil }
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := KEReadRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		out, res := KEAnswer(recs, keys, rand.Reader, export, "", 0)
		if len(out) == 0 || out[len(out)-1].Type != ntske.RecordEndOfMessage || (res != KEOK) != (out[0].Type == ntske.RecordError) {
			t.Fatalf("answer %v %+v", res, out)
		}
	})
}
