// Package sandbox assembles a whole mailsandbox: it opens the store, builds
// every protocol server from one Config, starts them on their listeners and
// stops them in reverse order. The mailsandbox binary and sdk/sandboxtest
// both use it, so tests run the same assembly users do.
package sandbox

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strings"
	"time"
)

// Config is everything a sandbox can be told. DefaultConfig gives the
// contract's defaults; the zero value turns every listener off.
type Config struct {
	// Listener addresses; "" turns a listener off, port 0 picks a free one.
	SMTPAddr, HTTPAddr, POP3Addr, IMAPAddr string
	// Implicit-TLS listeners; they need a certificate.
	SMTPSAddr, POP3SAddr, IMAPSAddr string

	// DB is "" for a temporary store removed at exit, a file path for a
	// persistent SQLite store, or a postgres:// URL.
	DB string

	// TLS: a certificate and key file, or a self-signed certificate made at
	// start, or (for programs embedding the sandbox) a ready TLSConfig. Any
	// of them makes SMTP offer STARTTLS, POP3 STLS and IMAP STARTTLS.
	TLSCert, TLSKey string
	TLSSelfSigned   bool
	TLSConfig       *tls.Config

	MaxMessageBytes int64         // 0: 32 MiB
	MaxMessages     int           // retention by count; 0 keeps all
	MaxAge          time.Duration // retention by age; 0 keeps all

	// Credentials files (htpasswd, bcrypt). "" accepts any credentials
	// (SMTP, POP3, IMAP) or needs none (HTTP).
	SMTPAuthFile, MailboxAuthFile, HTTPAuthFile string
	// SMTPAuthAllowInsecure offers SMTP AUTH before TLS even with an auth file.
	SMTPAuthAllowInsecure bool
	// MailboxAuthAllowInsecure allows POP3/IMAP plain-text logins before TLS
	// even with an auth file.
	MailboxAuthAllowInsecure bool
	// HTTPCORSOrigin allows browser requests from that origin; "" none.
	HTTPCORSOrigin string

	Relay RelayConfig

	// Fault injection and the SMTP session log; see faults.go.
	Faults FaultsConfig

	Webhook WebhookConfig

	// Logger; nil means slog.Default().
	Logger *slog.Logger

	// Message checks (api/checks): SpamAssassin is spamd's host:port (""
	// turns the spam check off); AllowInternalLinkChecks lets the link
	// check reach loopback, private and link-local addresses.
	SpamAssassin            string
	AllowInternalLinkChecks bool
	// Mailpit-compatible settings (compat.go).
	Compat CompatConfig
	// Tags: automatic tagging (tags.go).
	Tags TagsConfig
}

// RelayConfig is the relay's part of Config. The relay is off unless a
// destination (Smarthost, MX or Routes) is set.
type RelayConfig struct {
	Smarthost     string            // host:port
	SmarthostAuth string            // user:pass
	MX            bool              // deliver to each domain's MX hosts
	Routes        map[string]string // domain → host:port; beats MX and smarthost
	Match         []string          // auto-relay recipients matching these globs
	MaxAge        time.Duration     // give up and bounce after this; 0: 24h
	RetryMin      time.Duration     // 0: 1m
	RetryMax      time.Duration     // 0: 1h
	// SmarthostInsecureTLS skips verifying the smarthost's certificate.
	SmarthostInsecureTLS bool
	// Helo is the relay's EHLO name: "" means the host's FQDN when one
	// resolves, else the connection's address literal.
	Helo string
	// Keep is how long finished deliveries stay listed; 0 keeps them as
	// long as their message.
	Keep time.Duration
}

// Enabled reports whether any destination is configured.
func (r RelayConfig) Enabled() bool { return r.Smarthost != "" || r.MX || len(r.Routes) > 0 }

// DefaultConfig returns the contract's defaults: every protocol on its
// loopback port, a temporary store, 32 MiB messages.
func DefaultConfig() Config {
	return Config{
		SMTPAddr:        "127.0.0.1:1025",
		HTTPAddr:        "127.0.0.1:8025",
		POP3Addr:        "127.0.0.1:1110",
		IMAPAddr:        "127.0.0.1:1143",
		MaxMessageBytes: 32 << 20,
		Faults:          FaultsConfig{SMTPLogSessions: 1000},
		Relay: RelayConfig{
			MaxAge:   24 * time.Hour,
			RetryMin: time.Minute,
			RetryMax: time.Hour,
			Keep:     7 * 24 * time.Hour,
		},
		Webhook: defaultWebhookConfig(),
	}
}

// ConfigError names the setting (by its flag name) that is wrong.
type ConfigError struct {
	Flag string
	Err  error
}

// Error is always one line, as start-up prints it as one: causes that span
// lines (a PostgreSQL driver lists every address it tried) are joined.
func (e *ConfigError) Error() string { return "--" + e.Flag + ": " + oneLine(e.Err.Error()) }

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.ReplaceAll(strings.Join(parts, "; "), ":; ", ": ")
}

func (e *ConfigError) Unwrap() error { return e.Err }

func bad(flag, format string, args ...any) error {
	return &ConfigError{Flag: flag, Err: fmt.Errorf(format, args...)}
}

// Validate checks the configuration without touching the network or disk
// beyond what it names; the first problem found is returned as a
// *ConfigError.
func (c Config) Validate() error {
	for _, a := range []struct{ flag, addr string }{
		{"smtp-addr", c.SMTPAddr}, {"http-addr", c.HTTPAddr}, {"pop3-addr", c.POP3Addr}, {"imap-addr", c.IMAPAddr},
		{"smtps-addr", c.SMTPSAddr}, {"pop3s-addr", c.POP3SAddr}, {"imaps-addr", c.IMAPSAddr},
	} {
		if a.addr == "" {
			continue
		}
		if err := checkHostPort(a.addr); err != nil {
			return bad(a.flag, "%v", err)
		}
	}
	if c.SpamAssassin != "" {
		if err := checkHostPort(c.SpamAssassin); err != nil {
			return bad("spamassassin", "%v", err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		if c.TLSCert == "" {
			return bad("tls-cert", "required with --tls-key")
		}
		return bad("tls-key", "required with --tls-cert")
	}
	if c.TLSCert != "" && c.TLSSelfSigned {
		return bad("tls-self-signed", "cannot be combined with --tls-cert")
	}
	hasTLS := c.TLSCert != "" || c.TLSSelfSigned || c.TLSConfig != nil
	for _, a := range []struct{ flag, addr string }{{"smtps-addr", c.SMTPSAddr}, {"pop3s-addr", c.POP3SAddr}, {"imaps-addr", c.IMAPSAddr}} {
		if a.addr != "" && !hasTLS {
			return bad(a.flag, "needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)")
		}
	}
	// A URL names a server; only PostgreSQL is one. Anything else is a
	// SQLite file path, so "mysql://…" would otherwise become a file name.
	if scheme, _, ok := strings.Cut(c.DB, "://"); ok && scheme != "postgres" && scheme != "postgresql" {
		return bad("db", "want a file path or a postgres:// URL, got a %s:// URL", scheme)
	}
	if c.MaxMessageBytes < 0 {
		return bad("max-message-size", "must not be negative")
	}
	if c.MaxMessages < 0 {
		return bad("max-messages", "must not be negative")
	}
	if c.MaxAge < 0 {
		return bad("max-age", "must not be negative")
	}
	r := c.Relay
	if r.Smarthost != "" {
		if err := checkHostPort(r.Smarthost); err != nil {
			return bad("relay-smarthost", "%v", err)
		}
	}
	// The smarthost carries all mail no route names, so MX delivery would
	// never be used: refuse rather than silently ignore one of the two.
	if r.MX && r.Smarthost != "" {
		return bad("relay-mx", "cannot be combined with --relay-smarthost (the smarthost carries all mail; use --relay-route for exceptions)")
	}
	if r.SmarthostInsecureTLS && r.Smarthost == "" {
		return bad("relay-smarthost-insecure-tls", "needs --relay-smarthost")
	}
	if r.SmarthostAuth != "" {
		if r.Smarthost == "" {
			return bad("relay-smarthost-auth", "needs --relay-smarthost")
		}
		if u, _, ok := strings.Cut(r.SmarthostAuth, ":"); !ok || u == "" {
			return bad("relay-smarthost-auth", "want user:password")
		}
	}
	for domain, hp := range r.Routes {
		if domain == "" || strings.ContainsAny(domain, "@ ") {
			return bad("relay-route", "bad domain %q (want domain=host:port)", domain)
		}
		if err := checkHostPort(hp); err != nil {
			return bad("relay-route", "%s: %v", domain, err)
		}
	}
	for _, m := range r.Match {
		if _, err := path.Match(m, ""); err != nil || m == "" {
			return bad("relay-match", "bad pattern %q", m)
		}
	}
	if len(r.Match) > 0 && !r.Enabled() {
		return bad("relay-match", "needs a destination: --relay-smarthost, --relay-mx or --relay-route")
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"relay-max-age", r.MaxAge}, {"relay-retry-min", r.RetryMin}, {"relay-retry-max", r.RetryMax}, {"relay-keep", r.Keep}} {
		if d.v < 0 {
			return bad(d.flag, "must not be negative")
		}
	}
	if r.RetryMin > 0 && r.RetryMax > 0 && r.RetryMin > r.RetryMax {
		return bad("relay-retry-max", "must be at least --relay-retry-min (%s)", r.RetryMin)
	}
	if _, err := c.Tags.tagger(); err != nil {
		return err
	}
	if err := c.validateCompat(); err != nil {
		return err
	}
	if err := c.Faults.validate(); err != nil {
		return err
	}
	return c.Webhook.validate()
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	_ = host
	if port == "" {
		return fmt.Errorf("missing port in %q", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("bad port in %q", addr)
	}
	return nil
}
