package tlscert_test

import (
	"crypto/x509"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
)

func TestSelfSignedVerifiesForItsNames(t *testing.T) {
	cert, err := tlscert.SelfSigned("mail.test", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	pool := tlscert.Pool(cert)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "mail.test", "10.1.2.3"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool}); err == nil {
		t.Error("verified for a name it does not carry")
	}
	if len(tlscert.PEM(cert)) == 0 {
		t.Error("empty PEM")
	}
}
