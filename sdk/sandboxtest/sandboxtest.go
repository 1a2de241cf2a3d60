// Package sandboxtest runs a whole mailsandbox inside a Go test, in the
// spirit of net/http/httptest: every protocol on a free loopback port, a
// temporary store, and a ready SDK client. It assembles the sandbox with the
// same wiring as the mailsandbox binary (cmd/sandbox), so tests exercise
// what users run.
//
//	func TestSignup(t *testing.T) {
//		s := sandboxtest.New(t)
//		app := myapp.New(myapp.SMTP(s.SMTPAddr()))
//		app.SignUp("bob@example.com")
//		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//		defer cancel()
//		msg, err := s.Client().Wait(ctx, sdk.Filter{To: "bob@example.com", Subject: "Welcome"})
//		...
//	}
//
// Starting one takes a few milliseconds, so a suite can start one per test
// (and use t.Parallel).
package sandboxtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/sdk"
)

// Sandbox is a running in-process sandbox.
type Sandbox struct {
	sb        *sandbox.Sandbox
	client    *sdk.Client
	transport *http.Transport
	tlsConfig *tls.Config // client side, trusts the sandbox's certificate
	certPool  *x509.CertPool
	logs      *testLogWriter

	closeOnce sync.Once
	closeErr  error
}

// Option configures a sandbox before it starts.
type Option func(*options)

type options struct {
	tls    bool
	logger *slog.Logger
	config []func(*sandbox.Config)
}

// WithTLS gives the sandbox a fresh self-signed certificate for 127.0.0.1
// and localhost, like httptest.NewTLSServer: SMTP then offers STARTTLS, POP3
// STLS and IMAP STARTTLS, and implicit-TLS listeners (SMTPSAddr, POP3SAddr,
// IMAPSAddr) start too. [Sandbox.TLSConfig] and [Sandbox.CertPool] trust the
// certificate. The HTTP API stays plain HTTP.
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithLogger sends the sandbox's logs to l. By default warnings and errors
// go to the test log (t.Log) while the sandbox runs.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithDB stores mail in dsn (a SQLite file path or a postgres:// URL)
// instead of a temporary store.
func WithDB(dsn string) Option {
	return WithConfig(func(c *sandbox.Config) { c.DB = dsn })
}

// WithConfig changes the sandbox configuration before start (limits, auth
// files, relay settings…). Listener addresses are already set to
// 127.0.0.1:0.
func WithConfig(fn func(*sandbox.Config)) Option {
	return func(o *options) { o.config = append(o.config, fn) }
}

// New starts a sandbox for the test and closes it when the test and its
// subtests end (t.Cleanup). It fails the test if the sandbox cannot start.
func New(t testing.TB, opts ...Option) *Sandbox {
	t.Helper()
	logs := &testLogWriter{t: t}
	o := options{logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := start(context.Background(), o)
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	s.logs = logs
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sandboxtest: close: %v", err)
		}
	})
	return s
}

// Start starts a sandbox outside a test (in TestMain, an example or a
// tool). The caller must Close it. Logs are discarded unless WithLogger is
// given.
func Start(ctx context.Context, opts ...Option) (*Sandbox, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return start(ctx, o)
}

func start(ctx context.Context, o options) (*Sandbox, error) {
	cfg := sandbox.DefaultConfig()
	cfg.SMTPAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.POP3Addr = "127.0.0.1:0"
	cfg.IMAPAddr = "127.0.0.1:0"
	cfg.Logger = o.logger
	s := &Sandbox{}
	if o.tls {
		cert, err := tlscert.SelfSigned()
		if err != nil {
			return nil, fmt.Errorf("make certificate: %w", err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		cert.Leaf = leaf
		s.certPool = x509.NewCertPool()
		s.certPool.AddCert(leaf)
		s.tlsConfig = &tls.Config{RootCAs: s.certPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		cfg.SMTPSAddr = "127.0.0.1:0"
		cfg.POP3SAddr = "127.0.0.1:0"
		cfg.IMAPSAddr = "127.0.0.1:0"
	}
	for _, fn := range o.config {
		fn(&cfg)
	}
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	s.sb = sb
	s.transport = &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	s.client = sdk.New(sb.URL(), sdk.WithHTTPClient(&http.Client{Transport: s.transport}))
	return s, nil
}

// SMTPAddr is the host:port of the SMTP server (127.0.0.1:port).
func (s *Sandbox) SMTPAddr() string { return s.sb.SMTPAddr() }

// URL is the base URL of the REST API and web UI, e.g. http://127.0.0.1:port.
func (s *Sandbox) URL() string { return s.sb.URL() }

// HTTPAddr is the host:port of the HTTP server.
func (s *Sandbox) HTTPAddr() string { return s.sb.HTTPAddr() }

// POP3Addr is the host:port of the POP3 server.
func (s *Sandbox) POP3Addr() string { return s.sb.POP3Addr() }

// IMAPAddr is the host:port of the IMAP server.
func (s *Sandbox) IMAPAddr() string { return s.sb.IMAPAddr() }

// SMTPSAddr is the implicit-TLS SMTP address; "" without [WithTLS].
func (s *Sandbox) SMTPSAddr() string { return s.sb.SMTPSAddr() }

// POP3SAddr is the implicit-TLS POP3 address; "" without [WithTLS].
func (s *Sandbox) POP3SAddr() string { return s.sb.POP3SAddr() }

// IMAPSAddr is the implicit-TLS IMAP address; "" without [WithTLS].
func (s *Sandbox) IMAPSAddr() string { return s.sb.IMAPSAddr() }

// Client returns an SDK client for this sandbox.
func (s *Sandbox) Client() *sdk.Client { return s.client }

// TLSConfig returns a client TLS configuration that trusts the sandbox's
// certificate (ServerName 127.0.0.1), for STARTTLS or implicit TLS; nil
// without [WithTLS]. Each call returns a fresh copy.
func (s *Sandbox) TLSConfig() *tls.Config {
	if s.tlsConfig == nil {
		return nil
	}
	return s.tlsConfig.Clone()
}

// CertPool returns a pool holding the sandbox's certificate; nil without
// [WithTLS].
func (s *Sandbox) CertPool() *x509.CertPool { return s.certPool }

// Close stops the sandbox: it stops accepting, waits (up to a few seconds)
// for sessions in flight, and removes the temporary store. It is safe to
// call more than once; New registers it with t.Cleanup.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		s.transport.CloseIdleConnections()
		done := make(chan error, 1)
		go func() { done <- s.sb.Close() }()
		timer := time.NewTimer(3 * time.Second)
		defer timer.Stop()
		select {
		case s.closeErr = <-done:
		case <-timer.C:
			if s.logs != nil {
				s.logs.t.Logf("sandboxtest: Close still waiting after 3s for sessions in flight (an unclosed SMTP/POP3/IMAP connection or an open event stream?)")
			}
			s.closeErr = <-done
		}
		if s.logs != nil {
			s.logs.stop()
		}
	})
	return s.closeErr
}

// testLogWriter forwards log lines to t.Log until the sandbox is closed;
// logging to a finished test would panic.
type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log("sandbox: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
