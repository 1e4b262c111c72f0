package ntp

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/facebook/time/ntp/ntske"
	"github.com/facebook/time/ntp/protocol"
)

// NTS Key Establishment, the server's answer (RFC 8915 section 4),
// sans-I/O: the records of a request in, the records to send back out.
// The TLS session (1.3, ALPN "ntske/1") and its exporter are the
// caller's; the record codec is facebook/time's ntske.

// KE record limits: a request is a handful of records; 1 KiB holds any a
// client sends (chrony's is about 20 octets). A larger one is refused
// before it is buffered.
const (
	KEMaxRequest = 1024
	// KECookies is how many cookies a client gets (4.1.6: "typically 8";
	// chrony keeps 8).
	KECookies = 8
)

// NTS-KE error codes (4.1.3).
const (
	keErrUnrecognizedCritical = 0
	keErrBadRequest           = 1
	keErrInternal             = 2
)

// KEExport derives one of the session's keys from the TLS session
// (tls.ConnectionState.ExportKeyingMaterial with KEExporterLabel and
// KEExporterContext): RFC 8915 5.1.
type KEExport func(label string, context []byte, length int) ([]byte, error)

// KEExporterLabel is RFC 8915 5.1's exporter label.
const KEExporterLabel = "EXPORTER-network-time-security"

// KEExporterContext is the exporter's context for the NTPv4 protocol
// (ID 0), an AEAD algorithm and a direction (0 client to server, 1 the
// other way): 5.1.
func KEExporterContext(alg protocol.AEADAlgorithm, s2c bool) []byte {
	c := make([]byte, 5)
	binary.BigEndian.PutUint16(c[2:], uint16(alg))
	if s2c {
		c[4] = 1
	}
	return c
}

// KEResult says how an exchange ended.
type KEResult int

// KE results.
const (
	KEOK       KEResult = iota // cookies handed out
	KERefused                  // an Error record sent: the request was not one sitegm serves
	KEInternal                 // an Error record sent: sitegm could not (keys, exporter)
)

// KEAnswer answers an NTS-KE request: Next Protocol NTPv4 (0), AEAD
// AES-SIV-CMAC-256 (15), the NTP server and port when they are not the
// ones the client connected to (server "" and port 0 leave them out),
// KECookies cookies, End of Message. A request without NTPv4 or without
// algorithm 15, with a duplicate negotiation record, without End of
// Message, or with a critical record sitegm does not know, gets an Error
// record (4.1.3) and End of Message.
func KEAnswer(req []ntske.Record, keys *CookieKeys, rnd io.Reader, export KEExport, server string, port uint16) ([]ntske.Record, KEResult) {
	fail := func(code uint16, res KEResult) ([]ntske.Record, KEResult) {
		return []ntske.Record{ntske.NewError(code), ntske.NewEndOfMessage()}, res
	}
	var proto, aead, eom bool
	ntpv4, siv := false, false
	for _, r := range req {
		switch r.Type {
		case ntske.RecordEndOfMessage:
			eom = true
		case ntske.RecordNextProtocol:
			ids, err := ntske.ParseUint16s(r.Body)
			if proto || err != nil {
				return fail(keErrBadRequest, KERefused)
			}
			proto = true
			for _, id := range ids {
				ntpv4 = ntpv4 || id == ntske.NextProtocolNTPv4
			}
		case ntske.RecordAEADAlgorithm:
			ids, err := ntske.ParseUint16s(r.Body)
			if aead || err != nil {
				return fail(keErrBadRequest, KERefused)
			}
			aead = true
			for _, id := range ids {
				siv = siv || protocol.AEADAlgorithm(id) == protocol.AEADAESSIVCMAC256
			}
		case ntske.RecordError, ntske.RecordWarning, ntske.RecordNewCookie,
			ntske.RecordServerNegotiation, ntske.RecordPortNegotiation:
			// A client may send them; nothing to do with them here.
		default:
			if r.Critical {
				return fail(keErrUnrecognizedCritical, KERefused)
			}
		}
	}
	if !eom || !proto || !ntpv4 || !aead || !siv {
		return fail(keErrBadRequest, KERefused)
	}
	const alg = protocol.AEADAESSIVCMAC256
	c2s, err := export(KEExporterLabel, KEExporterContext(alg, false), 32)
	if err != nil {
		return fail(keErrInternal, KEInternal)
	}
	s2c, err := export(KEExporterLabel, KEExporterContext(alg, true), 32)
	if err != nil {
		return fail(keErrInternal, KEInternal)
	}
	next := ntske.NewNextProtocol(ntske.NextProtocolNTPv4)
	algRec := ntske.NewAEADAlgorithm(uint16(alg))
	algRec.Critical = true // a client must understand the algorithm chosen
	out := []ntske.Record{next, algRec}
	if server != "" {
		out = append(out, ntske.NewServerNegotiation(server))
	}
	if port != 0 {
		out = append(out, ntske.NewPortNegotiation(port))
	}
	for range KECookies {
		c, err := keys.Seal(rnd, alg, c2s, s2c)
		if err != nil {
			return fail(keErrInternal, KEInternal)
		}
		out = append(out, ntske.NewCookie(c))
	}
	return append(out, ntske.NewEndOfMessage()), KEOK
}

// KEReadRequest reads a request's records up to End of Message from r,
// never more than KEMaxRequest octets.
func KEReadRequest(r io.Reader) ([]ntske.Record, error) {
	var buf []byte
	hdr := make([]byte, 4)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		if len(buf)+4+n > KEMaxRequest {
			return nil, errKETooLong
		}
		buf = append(buf, hdr...)
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		buf = append(buf, body...)
		if binary.BigEndian.Uint16(hdr)&0x7FFF == ntske.RecordEndOfMessage {
			return ntske.Parse(buf)
		}
	}
}

var errKETooLong = errors.New("NTS-KE request longer than 1 KiB")
