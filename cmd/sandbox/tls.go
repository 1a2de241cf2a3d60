package sandbox

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
)

// tlsConfig builds the one TLS configuration every listener shares, or nil
// when none is configured.
func (c Config) tlsConfig() (*tls.Config, error) {
	switch {
	case c.TLSConfig != nil:
		return c.TLSConfig, nil
	case c.TLSCert != "":
		// Read each file on its own, so the error names the flag that is wrong.
		certPEM, err := os.ReadFile(c.TLSCert)
		if err != nil {
			return nil, bad("tls-cert", "read certificate: %v", err)
		}
		keyPEM, err := os.ReadFile(c.TLSKey)
		if err != nil {
			return nil, bad("tls-key", "read private key: %v", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// crypto/tls says which input it could not use only in its text.
			flag, msg := "tls-cert", err.Error()
			if !strings.Contains(msg, "certificate input") && (strings.Contains(msg, "private key") || strings.Contains(msg, "key input")) {
				flag = "tls-key"
			}
			return nil, bad(flag, "load certificate %s with key %s: %v", c.TLSCert, c.TLSKey, err)
		}
		return tlscert.ServerConfig(cert), nil
	case c.TLSSelfSigned:
		cert, err := tlscert.SelfSigned()
		if err != nil {
			return nil, fmt.Errorf("make self-signed certificate: %w", err)
		}
		return tlscert.ServerConfig(cert), nil
	}
	return nil, nil
}
