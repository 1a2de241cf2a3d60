package sandbox

import (
	"regexp"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/authfile"
)

// CompatConfig holds the settings added so that every Mailpit setting has
// a native one (each is a flag; MP_ variables map onto them). The zero
// value changes nothing.
type CompatConfig struct {
	// Inline credentials, "user:pass user2:pass2" (plain-text passwords),
	// used like the matching *AuthFile; a file and inline credentials for
	// the same protocol cannot be combined.
	SMTPAuth, MailboxAuth, HTTPAuth string
	// SMTPRequireSTARTTLS refuses MAIL before STARTTLS (needs a
	// certificate).
	SMTPRequireSTARTTLS bool
	// SMTPRequireTLS makes the SMTP listener (SMTPAddr) speak implicit TLS
	// (needs a certificate).
	SMTPRequireTLS bool
	// SMTPMaxRecipients caps RCPTs per message; 0 means 1000.
	SMTPMaxRecipients int
	// SMTPAllowedRecipients, a regular expression, refuses RCPT addresses
	// it does not match with 550; "" allows all.
	SMTPAllowedRecipients string
	// HTTPWebroot serves all of HTTP under this path prefix; "" is /.
	HTTPWebroot string
}

func (c Config) validateCompat() error {
	m := c.Compat
	hasTLS := c.TLSCert != "" || c.TLSSelfSigned || c.TLSConfig != nil
	for _, a := range []struct{ flag, inline, file, fileFlag string }{
		{"smtp-auth", m.SMTPAuth, c.SMTPAuthFile, "smtp-auth-file"},
		{"mailbox-auth", m.MailboxAuth, c.MailboxAuthFile, "mailbox-auth-file"},
		{"http-auth", m.HTTPAuth, c.HTTPAuthFile, "http-auth-file"},
	} {
		if a.inline == "" {
			continue
		}
		if a.file != "" {
			return bad(a.flag, "cannot be combined with --%s", a.fileFlag)
		}
		if _, err := authfile.FromPairs(a.inline, "--"+a.flag); err != nil {
			return bad(a.flag, "want user:password pairs separated by spaces")
		}
	}
	// As Mailpit: inline SMTP credentials without TLS could never be sent
	// (AUTH is offered only over TLS), so say so at start.
	if m.SMTPAuth != "" && !hasTLS && !c.SMTPAuthAllowInsecure {
		return bad("smtp-auth", "AUTH is offered only over TLS: add a certificate (--tls-cert and --tls-key, or --tls-self-signed) or --smtp-auth-allow-insecure")
	}
	if m.SMTPRequireSTARTTLS && !hasTLS {
		return bad("smtp-require-starttls", "needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)")
	}
	if m.SMTPRequireTLS && !hasTLS {
		return bad("smtp-require-tls", "needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)")
	}
	if m.SMTPRequireTLS && m.SMTPRequireSTARTTLS {
		return bad("smtp-require-tls", "cannot be combined with --smtp-require-starttls (one listener is either implicit TLS or STARTTLS)")
	}
	if m.SMTPMaxRecipients < 0 {
		return bad("smtp-max-recipients", "must not be negative")
	}
	if m.SMTPAllowedRecipients != "" {
		if _, err := regexp.Compile(m.SMTPAllowedRecipients); err != nil {
			return bad("smtp-allowed-recipients", "not a regular expression: %v", err)
		}
	}
	if w := m.HTTPWebroot; w != "" && rest.NormalizeWebroot(w) != "/" {
		for _, r := range w {
			if r <= ' ' || r == '?' || r == '#' || r == '%' || r == '\\' {
				return bad("http-webroot", "want a plain path such as /mail/, got %q", w)
			}
		}
	}
	return nil
}

// compatAuth loads inline credentials; nil when none are set.
func compatAuth(flag, inline string) (*authfile.File, error) {
	if inline == "" {
		return nil, nil
	}
	f, err := authfile.FromPairs(inline, "--"+flag)
	if err != nil {
		return nil, bad(flag, "want user:password pairs separated by spaces")
	}
	return f, nil
}

// allowedRecipients compiles the RCPT filter; nil when none is set.
func (m CompatConfig) allowedRecipients() *regexp.Regexp {
	if m.SMTPAllowedRecipients == "" {
		return nil
	}
	return regexp.MustCompile(m.SMTPAllowedRecipients) // checked by Validate
}
