package sandbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mailsandbox/mailsandbox/api/checks"
	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/api/mailhog"
	"github.com/mailsandbox/mailsandbox/api/pop3d"
	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/api/webhooks"
	"github.com/mailsandbox/mailsandbox/capture/authfile"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/ui"
)

// server is what every protocol server offers.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

type listener struct {
	name string
	l    net.Listener
	srv  server
}

// Sandbox is a running sandbox.
type Sandbox struct {
	cfg   Config
	log   *slog.Logger
	st    *store.Store
	tls   *tls.Config
	relay *relayRunner
	hooks *webhookRunner

	listeners []listener
	addrs     map[string]string
	serveErr  chan error
	wg        sync.WaitGroup

	stopping atomic.Bool // set before servers are told to stop
	once     sync.Once
	closeErr error
}

// Start validates cfg, opens the store and starts every configured
// listener. On error nothing is left running.
func Start(ctx context.Context, cfg Config) (_ *Sandbox, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Sandbox{cfg: cfg, log: log, addrs: map[string]string{}, serveErr: make(chan error, 8)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.tls, err = cfg.tlsConfig(); err != nil {
		return nil, err
	}
	smtpAuth, err := loadAuth("smtp-auth-file", cfg.SMTPAuthFile)
	if err != nil {
		return nil, err
	}
	mailboxAuth, err := loadAuth("mailbox-auth-file", cfg.MailboxAuthFile)
	if err != nil {
		return nil, err
	}
	httpAuth, err := loadAuth("http-auth-file", cfg.HTTPAuthFile)
	if err != nil {
		return nil, err
	}
	// Inline credentials (Mailpit's MP_*_AUTH); Validate refused both kinds.
	for _, a := range []struct {
		flag, inline string
		into         **authfile.File
	}{{"smtp-auth", cfg.Compat.SMTPAuth, &smtpAuth}, {"mailbox-auth", cfg.Compat.MailboxAuth, &mailboxAuth}, {"http-auth", cfg.Compat.HTTPAuth, &httpAuth}} {
		if f, err := compatAuth(a.flag, a.inline); err != nil {
			return nil, err
		} else if f != nil {
			*a.into = f
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	relay, err := newRelayRunner(cfg.Relay, log.With("component", "relay"), reg)
	if err != nil {
		return nil, err
	}
	s.relay = relay
	stOpts := store.Options{DSN: cfg.DB, Logger: log.With("component", "store"), MaxMessages: cfg.MaxMessages, MaxAge: cfg.MaxAge, RelayKeep: cfg.Relay.Keep}
	if relay != nil {
		stOpts.Enqueue = relay.enqueueHook()
	}
	s.hooks = newWebhookRunner(cfg.Webhook, log.With("component", "webhook"))
	if s.hooks != nil {
		stOpts.WebhookURLs = s.hooks.opts.URLs
	}
	tagger, err := cfg.Tags.tagger()
	if err != nil {
		return nil, err
	}
	stOpts.Tagger = tagger.Tags
	if s.st, err = store.Open(ctx, stOpts); err != nil {
		// The store named by --db cannot be used: as with any other bad
		// setting, start-up stops naming the flag.
		return nil, &ConfigError{Flag: "db", Err: err}
	}
	reg.MustRegister(newStoreCollector(s.st))
	if relay != nil {
		if err := relay.start(s.st); err != nil {
			return nil, err
		}
	}
	if s.hooks != nil {
		if err := s.hooks.start(s.st); err != nil {
			return nil, err
		}
	}

	smtpOpts := smtpd.Options{
		MaxMessageBytes: cfg.MaxMessageBytes, TLSConfig: s.tls, AllowInsecureAuth: cfg.SMTPAuthAllowInsecure, Registerer: reg,
	}
	if smtpAuth != nil {
		smtpOpts.Auth = smtpAuth
	}
	smtpOpts.RequireTLS, smtpOpts.MaxRecipients = cfg.Compat.SMTPRequireSTARTTLS, cfg.Compat.SMTPMaxRecipients
	smtpOpts.AllowedRecipients = cfg.Compat.allowedRecipients()
	fe, sessions, faultsMount, err := cfg.Faults.build()
	if err != nil {
		return nil, err
	}
	smtpOpts.Faults, smtpOpts.SessionLog = fe, sessions
	smtpSrv := smtpd.New(s.st, smtpOpts, log.With("component", "smtp"))

	pop3Opts := pop3d.Options{TLSConfig: s.tls, AllowInsecureAuth: cfg.MailboxAuthAllowInsecure}
	imapOpts := imapd.Options{TLSConfig: s.tls, AllowInsecureAuth: cfg.MailboxAuthAllowInsecure, MaxLiteralBytes: cfg.MaxMessageBytes}
	if mailboxAuth != nil {
		pop3Opts.Auth = mailboxAuth
		imapOpts.Auth = mailboxAuth
	}
	pop3Srv := pop3d.New(s.st, pop3Opts, log.With("component", "pop3"))
	imapSrv := imapd.New(s.st, imapOpts, log.With("component", "imap"))

	restOpts := rest.Options{UI: ui.Handler(ui.Options{}), Registry: reg, CORSOrigin: cfg.HTTPCORSOrigin, MaxMessageBytes: cfg.MaxMessageBytes}
	if httpAuth != nil {
		restOpts.Auth = httpAuth
	}
	if relay != nil {
		restOpts.Relay = relay
	}
	checksH, err := checks.New(s.st, checks.Options{SpamAssassin: cfg.SpamAssassin, AllowInternalLinks: cfg.AllowInternalLinkChecks}, log.With("component", "checks"))
	if err != nil {
		return nil, err
	}
	restOpts.Mounts = append(restOpts.Mounts, rest.Mount{Register: checksH.Register})
	restOpts.Mounts = append(restOpts.Mounts, rest.Mount{Register: webhooks.New(s.st, s.hooks != nil).Register})
	restOpts.Mounts = append(restOpts.Mounts, rest.Mount{Register: mailhog.Register(s.st)})
	restOpts.Webroot = cfg.Compat.HTTPWebroot
	restOpts.Mounts = append(restOpts.Mounts, mailpitMount(s.st, cfg, relay, log))
	restOpts.Mounts = append(restOpts.Mounts, faultsMount)
	httpSrv := rest.New(s.st, restOpts, log.With("component", "http"))

	for _, l := range []struct {
		name, addr string
		tls        bool
		srv        server
	}{
		{"smtp", cfg.SMTPAddr, cfg.Compat.SMTPRequireTLS, smtpSrv},
		{"smtps", cfg.SMTPSAddr, true, smtpSrv},
		{"http", cfg.HTTPAddr, false, httpSrv},
		{"pop3", cfg.POP3Addr, false, pop3Srv},
		{"pop3s", cfg.POP3SAddr, true, pop3Srv},
		{"imap", cfg.IMAPAddr, false, imapSrv},
		{"imaps", cfg.IMAPSAddr, true, imapSrv},
	} {
		if l.addr == "" {
			continue
		}
		var lc net.ListenConfig
		if l.srv == smtpSrv {
			// Most mailers send one message per connection, so what an
			// accepted connection costs counts: Go turns TCP keepalive on
			// with four setsockopt calls per connection (0.5-1% of the
			// server's CPU at one message per connection). SMTP sessions
			// need none: their read and write timeouts end a session
			// whose client vanished.
			lc.KeepAlive = -1
		}
		nl, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			return nil, bad(l.name+"-addr", "listen: %v", err)
		}
		if l.tls {
			nl = tls.NewListener(nl, s.tls)
		}
		s.listeners = append(s.listeners, listener{name: l.name, l: nl, srv: l.srv})
		s.addrs[l.name] = nl.Addr().String()
	}
	for _, l := range s.listeners {
		s.wg.Add(1)
		go func(l listener) {
			defer s.wg.Done()
			// Each server has its own "closed" error; after stop began, any
			// error from Serve is just the server ending.
			if err := l.srv.Serve(l.l); err != nil && !errors.Is(err, net.ErrClosed) && !s.stopping.Load() {
				s.log.Error("listener stopped", "listener", l.name, "err", err)
				s.serveErr <- fmt.Errorf("%s: %w", l.name, err)
			}
		}(l)
		s.log.Info("listening", "protocol", l.name, "addr", l.l.Addr().String())
	}
	return s, nil
}

func loadAuth(flag, path string) (*authfile.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := authfile.Load(path)
	if err != nil {
		return nil, bad(flag, "%v", err)
	}
	return f, nil
}

// Addresses of the listeners as they were bound ("" when off).
func (s *Sandbox) SMTPAddr() string  { return s.addrs["smtp"] }
func (s *Sandbox) SMTPSAddr() string { return s.addrs["smtps"] }
func (s *Sandbox) HTTPAddr() string  { return s.addrs["http"] }
func (s *Sandbox) POP3Addr() string  { return s.addrs["pop3"] }
func (s *Sandbox) POP3SAddr() string { return s.addrs["pop3s"] }
func (s *Sandbox) IMAPAddr() string  { return s.addrs["imap"] }
func (s *Sandbox) IMAPSAddr() string { return s.addrs["imaps"] }

// URL is the base URL of the HTTP listener.
func (s *Sandbox) URL() string {
	if s.addrs["http"] == "" {
		return ""
	}
	return "http://" + s.addrs["http"] + strings.TrimSuffix(rest.NormalizeWebroot(s.cfg.Compat.HTTPWebroot), "/")
}

// Store gives direct access to the store, for tests and tools.
func (s *Sandbox) Store() *store.Store { return s.st }

// TLSConfig is the server-side TLS configuration in use, nil when none.
func (s *Sandbox) TLSConfig() *tls.Config { return s.tls }

// Err reports a listener that stopped on its own.
func (s *Sandbox) Err() <-chan error { return s.serveErr }

// Shutdown stops accepting, lets sessions in flight finish until ctx ends,
// then stops the relay and closes the store. Safe to call more than once.
func (s *Sandbox) Shutdown(ctx context.Context) error {
	s.once.Do(func() { s.closeErr = s.stop(ctx) })
	return s.closeErr
}

// Close stops everything, giving sessions in flight a few seconds.
func (s *Sandbox) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

func (s *Sandbox) stop(ctx context.Context) error {
	s.stopping.Store(true)
	var errs []error
	// Reverse order of start; a server listening twice (plain and TLS) is
	// shut down once.
	done := map[server]bool{}
	for i := len(s.listeners) - 1; i >= 0; i-- {
		l := s.listeners[i]
		if done[l.srv] {
			continue
		}
		done[l.srv] = true
		if err := l.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("stop %s: %w", l.name, err))
		}
		if ctx.Err() != nil {
			l.srv.Close()
		}
	}
	for _, l := range s.listeners {
		l.l.Close()
		if !done[l.srv] {
			l.srv.Close()
		}
	}
	s.wg.Wait()
	if s.relay != nil {
		s.relay.stop()
	}
	if s.hooks != nil {
		s.hooks.stop()
	}
	if s.st != nil {
		if err := s.st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}
