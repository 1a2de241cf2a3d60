// Package pop3d is a POP3 server (RFC 1939) over the mail store, with CAPA
// and response codes (RFC 2449), AUTH PLAIN (RFC 5034) and STLS (RFC 2595).
//
// A client logs in with a mailbox address (USER/PASS or AUTH PLAIN) and sees
// that mailbox's INBOX as its maildrop: a snapshot taken at login, numbered
// from 1 by ascending UID and fixed for the session. DELE only marks; the
// marked messages are removed from that mailbox (other recipients' copies
// stay) when the client ends the session with QUIT. A connection that drops
// or times out removes nothing. The mailbox is locked for the duration of
// the session, so a second session on it is refused with [IN-USE].
//
// UIDL values are "<uidvalidity>.<entry id>" of the INBOX entry: unique and
// stable across sessions and restarts.
//
// Logins are USER/PASS and AUTH PLAIN (with or without an initial
// response); APOP and other SASL mechanisms are not offered. Sizes in STAT
// and LIST are the octets RETR sends: lines end in CRLF even where the
// stored message had bare LFs.
//
// For implicit TLS (pop3s), wrap the listener before serving it:
//
//	srv.Serve(tls.NewListener(ln, opts.TLSConfig))
//
// Connections from such a listener count as secure from the start, so
// plain-text logins are allowed on them and STLS is not offered. Use the
// same config as Options.TLSConfig: the connection limiter rebuilds each
// TLS connection with it (see capture/connlimit).
package pop3d

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/connlimit"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the POP3 server needs of the mail store (*store.Store).
type Store interface {
	// Folders lists a mailbox's folders without creating any.
	Folders(ctx context.Context, mailbox string) ([]store.Folder, error)
	// Entries lists one folder's entries by ascending UID.
	Entries(ctx context.Context, folderID int64) ([]store.Entry, error)
	// Raw returns a message's bytes.
	Raw(ctx context.Context, id string) ([]byte, error)
	// DeleteEntries removes entries of one mailbox.
	DeleteEntries(ctx context.Context, mailbox string, ids []int64) error
	// LockMailbox takes the exclusive maildrop lock, or fails with
	// store.ErrLocked.
	LockMailbox(ctx context.Context, mailbox string) (func(), error)
}

var _ Store = (*store.Store)(nil)

// Authenticator checks a login. user is the mailbox name (the address as
// given, lower-cased by store.NormalizeAddress). A non-nil error refuses
// the login; its text is logged, not sent to the client.
type Authenticator interface {
	Check(ctx context.Context, user, pass string) error
}

// Options configure a Server. The zero value is a usable plain-text server
// that accepts any password.
type Options struct {
	// TLSConfig enables STLS on plain connections. nil: no STLS is offered.
	TLSConfig *tls.Config
	// Auth checks passwords. nil: any password is accepted for any mailbox.
	Auth Authenticator
	// AllowInsecureAuth allows USER/PASS and AUTH PLAIN on connections that
	// are not (yet) TLS even when Auth is set. Without Auth, or without
	// TLSConfig (no way to get TLS), plain-text logins are always allowed.
	AllowInsecureAuth bool
	// IdleTimeout closes a connection that sends nothing for this long.
	// 0: 10 minutes (RFC 1939's minimum autologout timer).
	IdleTimeout time.Duration
	// MaxBadCommands closes a connection after this many unknown,
	// malformed, out-of-state or too long commands and failed logins.
	// 0: 20.
	MaxBadCommands int
	// MaxLineBytes bounds a command line, CRLF included; longer lines are
	// refused without being buffered. 0: 1024 (RFC 2449 asks for 255 at
	// least; AUTH responses may be longer). Values under 64 act as 64.
	MaxLineBytes int
	// MaxConnections bounds concurrent sessions over all listeners, and
	// MaxConnectionsPerIP those from one client address; a client beyond
	// either gets "-ERR [SYS/TEMP] too many connections" and is
	// disconnected before a session starts. 0: 1000 and 100; negative: no
	// cap.
	MaxConnections      int
	MaxConnectionsPerIP int
}

const (
	defaultIdleTimeout    = 10 * time.Minute
	defaultMaxBadCommands = 20
	defaultMaxLineBytes   = 1024
	minLineBytes          = 64
	defaultMaxConnections = 1000
	defaultMaxConnsPerIP  = 100
)

func (o Options) withDefaults() Options {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.MaxBadCommands <= 0 {
		o.MaxBadCommands = defaultMaxBadCommands
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = defaultMaxLineBytes
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = defaultMaxConnections
	}
	if o.MaxConnectionsPerIP == 0 {
		o.MaxConnectionsPerIP = defaultMaxConnsPerIP
	}
	if o.MaxLineBytes < minLineBytes {
		o.MaxLineBytes = minLineBytes
	}
	return o
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("pop3d: server closed")

// Server is a POP3 server. Serve may be called with several listeners
// (e.g. a plain and an implicit-TLS one).
type Server struct {
	st   Store
	opts Options
	log  *slog.Logger

	ctx    context.Context // canceled by Close: aborts store calls
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool        // Shutdown or Close called: accept nothing more
	stopping  atomic.Bool // closing, readable by sessions without mu
	wg        sync.WaitGroup
	limits    *connlimit.Limiter // shared by every listener

	sizes sizeCache
}

// New returns a server over st. Options are copied; changing them later has
// no effect. A nil log means slog.Default().
func New(st Store, opts Options, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts = opts.withDefaults()
	return &Server{
		st:   st,
		opts: opts,
		limits: connlimit.New(connlimit.Options{
			MaxConnections:      opts.MaxConnections,
			MaxConnectionsPerIP: opts.MaxConnectionsPerIP,
			Refusal:             connlimit.POP3(),
			TLSConfig:           opts.TLSConfig,
		}),
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		sizes:     sizeCache{m: map[string]int64{}},
	}
}

// Serve accepts connections on ln until Close or Shutdown, serving each in
// its own goroutine. It always returns a non-nil error: ErrServerClosed
// after Close or Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	limited := s.limits.Listen(ln)
	var delay time.Duration
	for {
		c, err := limited.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("pop3 accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("pop3 accept: %w", err)
		}
		delay = 0
		if !s.startSession(c) {
			c.Close()
		}
	}
}

// startSession registers and runs a session for c. It returns false when
// the server is closing.
func (s *Server) startSession(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	sess := newSession(s, c)
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
		// Closed last, so a client that sees the connection end knows the
		// session is over: its lock released and its slot free.
		defer c.Close()
		sess.serve()
	}()
	return true
}

// Close stops listening and closes every connection at once. Sessions in
// progress end without their UPDATE phase, so nothing is deleted. Safe to
// call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.stopping.Store(true)
	var err error
	for ln := range s.listeners {
		if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = errors.Join(err, e)
		}
	}
	for sess := range s.sessions {
		sess.conn.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return err
}

// Shutdown stops listening, lets every session finish the command it is
// running, and ends sessions as they wait for their next command (without
// UPDATE: a dropped session deletes nothing). It returns when all sessions
// are gone, or with ctx's error after closing whatever is left when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.stopping.Store(true)
	var err error
	for ln := range s.listeners {
		if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = errors.Join(err, e)
		}
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return err
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// sizeCache remembers the POP3 size of messages (their bytes never change),
// so STAT and LIST read each body once rather than once per session.
type sizeCache struct {
	mu sync.Mutex
	m  map[string]int64
}

const maxCachedSizes = 100_000

func (c *sizeCache) get(id string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[id]
	return n, ok
}

func (c *sizeCache) put(id string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedSizes {
		clear(c.m)
	}
	c.m[id] = n
}
