package sandbox

import (
	"crypto/tls"
	"fmt"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
)

// tlsConfig builds the one TLS configuration every listener shares, or nil
// when none is configured.
func (c Config) tlsConfig() (*tls.Config, error) {
	switch {
	case c.TLSConfig != nil:
		return c.TLSConfig, nil
	case c.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, bad("tls-cert", "load certificate: %v", err)
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
