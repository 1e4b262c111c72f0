package ntp

import (
	"errors"
	"io"

	"github.com/facebook/time/ntp/protocol/nts/aessiv"
)

// The NTS Authenticator and Encrypted Extension Fields field (RFC 8915
// 5.6) with AEAD_AES_SIV_CMAC_256, the one algorithm sitegm negotiates
// (4.1.5: mandatory to implement; chrony offers only it). Its body is
// Nonce Length (2), Ciphertext Length (2), the nonce and the ciphertext
// each padded to 4 octets, then Additional Padding.
//
// Sealed as chrony seals it: a 16-octet random nonce (the AES-SIV nonce,
// RFC 5297 3: the last associated-data component after the packet up to
// the field). facebook/time's SIV-CMAC-256 path seals with no nonce and
// refuses one on opening; chrony refuses a field with no nonce ("Unexpected
// nonce/ciphertext length"), so neither could talk to the other through
// it. Opening accepts any nonce length, none included.

// authNonceLen is the nonce sitegm seals with (16 octets, the minimum of
// 5.6 without Additional Padding).
const authNonceLen = 16

var errAuth = errors.New("NTS authenticator does not verify")

func pad4(n int) int { return (n + 3) &^ 3 }

// authLen is the body length of an authenticator sealing n octets.
func authLen(n int) int { return 4 + authNonceLen + pad4(aessiv.BlockSize+n) }

// sealAuth writes the authenticator's body into dst (authLen(len(plain))
// octets) over ad, encrypting plain under key; rnd gives the nonce.
func sealAuth(dst []byte, key, ad, plain []byte, rnd io.Reader) error {
	siv, err := aessiv.NewAESSIV(key)
	if err != nil {
		return err
	}
	nonce := dst[4 : 4+authNonceLen]
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return err
	}
	ct, err := siv.Seal(dst[4+authNonceLen:4+authNonceLen], plain, ad, nonce)
	if err != nil {
		return err
	}
	be.PutUint16(dst, authNonceLen)
	be.PutUint16(dst[2:], uint16(len(ct)))
	clear(dst[4+authNonceLen+len(ct) : authLen(len(plain))])
	return nil
}

// openAuth verifies an authenticator's body over ad under key and returns
// the plaintext (the encrypted extension fields).
func openAuth(body []byte, key, ad []byte) ([]byte, error) {
	if len(body) < 4 {
		return nil, errAuth
	}
	nl, cl := int(be.Uint16(body)), int(be.Uint16(body[2:]))
	if 4+pad4(nl)+pad4(cl) > len(body) || cl < aessiv.BlockSize {
		return nil, errAuth
	}
	siv, err := aessiv.NewAESSIV(key)
	if err != nil {
		return nil, err
	}
	nonce, ct := body[4:4+nl], body[4+pad4(nl):4+pad4(nl)+cl]
	comps := [][]byte{ad, nonce}
	if nl == 0 {
		comps = comps[:1]
	}
	pt, err := siv.Open(nil, ct, comps...)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}
