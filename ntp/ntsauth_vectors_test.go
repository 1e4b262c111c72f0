package ntp

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/facebook/time/ntp/protocol/nts/aessiv"
)

// The AES-SIV-CMAC-256 sealing under sitegm's NTS authenticator (RFC 8915
// 5.6 names AEAD_AES_SIV_CMAC_256, RFC 5297) checked against RFC 5297's
// deterministic test vector (Appendix A.1): the library's output is the
// RFC's, and it opens back.
func TestAESSIVRFC5297Vector(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := h("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
	ad := h("101112131415161718191a1b1c1d1e1f2021222324252627")
	pt := h("112233445566778899aabbccddee")
	want := h("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")
	siv, err := aessiv.NewAESSIV(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := siv.Seal(nil, pt, ad)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("seal: %x %v, want %x", got, err, want)
	}
	back, err := siv.Open(nil, got, ad)
	if err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("open: %x %v", back, err)
	}
	got[0] ^= 1
	if _, err := siv.Open(nil, got, ad); err == nil {
		t.Error("a changed tag opened")
	}
}
