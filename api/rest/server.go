// Package rest serves the mailsandbox REST API (/api/v1), Server-Sent Events,
// /healthz, /metrics and, for every other path, the web UI.
//
// Handlers are grouped one file per resource: mailboxes.go, messages.go
// (read, search, change, delete), submit.go (POST /messages), wait.go
// (long-poll), events.go (SSE), relayqueue.go and openapi.go. All errors
// leave through one function, [httpError], as JSON {"error": "…"}.
package rest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/connlimit"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the REST API needs from the mail store (*store.Store).
type Store interface {
	Mailboxes(ctx context.Context) ([]store.MailboxInfo, error)
	Search(ctx context.Context, q store.Query) ([]store.Message, int, error)
	SearchCapped(ctx context.Context, q store.Query, limit int) ([]store.Message, int, bool, error)
	Find(ctx context.Context, q store.Query) ([]store.Message, error)
	Get(ctx context.Context, id string) (store.Message, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	Ingest(ctx context.Context, env store.Envelope, raw []byte) (string, error)
	SetSeen(ctx context.Context, id, mailbox string, seen bool) error
	DeleteMessage(ctx context.Context, id string) error
	DeleteMailbox(ctx context.Context, mailbox string) error
	DeleteAll(ctx context.Context) error
	Subscribe(ctx context.Context) <-chan store.Event
	// The relay queue.
	Deliveries(ctx context.Context) ([]store.Delivery, error)
	DropDelivery(ctx context.Context, id int64) error
	RetryDelivery(ctx context.Context, id int64) error
}

var _ Store = (*store.Store)(nil)

// Authenticator checks HTTP basic-auth credentials.
type Authenticator interface {
	Check(ctx context.Context, user, pass string) error
}

// Relay puts a captured message on the relay queue for some recipients.
// Errors wrapping store.ErrNotFound answer 404, store.ErrInvalid 400.
type Relay interface {
	Release(ctx context.Context, messageID string, to []string) error
}

// Defaults for zero Options fields.
const (
	DefaultMaxMessageBytes     = 32 << 20
	DefaultMaxRecipients       = 1000 // as capture/smtpd
	DefaultWaitTimeout         = 10 * time.Second
	DefaultWaitTimeoutMax      = 5 * time.Minute
	DefaultMaxConnections      = 1000
	DefaultMaxConnectionsPerIP = 200
	DefaultReadTimeout         = 60 * time.Second
	// heartbeatInterval spaces SSE keep-alive comments.
	heartbeatInterval = 15 * time.Second
)

// Options configure a Server. The zero value serves the API without UI,
// auth, CORS or relay.
type Options struct {
	// UI serves every path outside /api/, /healthz and /metrics; nil answers
	// those with a JSON 404.
	UI http.Handler
	// Registry receives the server's collectors and is served at /metrics;
	// nil makes a private registry (with Go and process collectors).
	Registry *prometheus.Registry
	// Auth, when set, requires HTTP basic auth for everything but /healthz;
	// nil means no auth.
	Auth Authenticator
	// CORSOrigin, when set, allows browser requests from that origin ("*" for
	// any) to /api/; "" sends no CORS headers.
	CORSOrigin string
	// Relay releases messages to the relay queue; nil answers release with
	// 409 "relay is not configured".
	Relay Relay
	// MaxMessageBytes caps a message submitted with POST /messages (413
	// beyond); 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// MaxRecipients caps the recipients of a message submitted with POST
	// /messages (400 beyond), as SMTP caps RCPT; 0 means
	// DefaultMaxRecipients.
	MaxRecipients int
	// WaitTimeoutMax caps the timeout of GET /messages/wait; 0 means
	// DefaultWaitTimeoutMax.
	WaitTimeoutMax time.Duration
	// MaxConnections caps concurrent connections over all listeners, and
	// MaxConnectionsPerIP those from one client address (browsers keep
	// several, plus one per open event stream). A client beyond either
	// gets a 503 JSON error with Connection: close before any handler
	// runs. 0 means DefaultMaxConnections and DefaultMaxConnectionsPerIP;
	// negative means no cap.
	MaxConnections      int
	MaxConnectionsPerIP int
	// ReadTimeout bounds reading a whole request, headers (themselves
	// bounded by 10 s) and body: a client that sends it slower is cut off
	// (its handler sees a read error, and the connection is closed).
	// Responses are not bounded, so waits and event streams last as long
	// as they need. 0 means DefaultReadTimeout; negative means none.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing each response, except the streams (GET
	// /events and /messages/wait, and handlers that call
	// LiftWriteDeadline): a client that stops reading is cut off. 0 means
	// DefaultWriteTimeout; negative means none.
	WriteTimeout time.Duration
	// Mounts add other packages' routes (Mailpit's and MailHog's APIs, fault
	// rules, message checks) to this server, behind its auth, CORS, limits
	// and metrics, so those packages need not import this one's internals.
	Mounts []Mount
	// Webroot serves everything (API, UI, health, metrics, mounts) under
	// this path prefix, as Mailpit's --webroot does: "/mail/" serves the
	// UI at /mail/ and the API at /mail/api/v1. "" or "/" means the root.
	Webroot string
}

// Mount is a set of routes another package serves on this server.
type Mount struct {
	// Paths outside /api/ that the mount serves: an exact path, or a
	// prefix ending in "/". Everything under /api/ reaches the routes
	// already.
	Paths []string
	// Public are exact paths (outside /api/) served without HTTP auth, as
	// /healthz is: container health probes carry no credentials.
	Public []string
	// Register adds the routes; called once, after the native routes.
	Register func(e *echo.Echo)
}

// Server is the HTTP server for REST, SSE, metrics and the UI.
type Server struct {
	st      Store
	opts    Options
	log     *slog.Logger
	echo    *echo.Echo
	handler http.Handler
	metrics *metrics
	limits  *connlimit.Limiter // shared by every listener

	done     chan struct{} // closed by Shutdown/Close: ends waits and SSE streams
	doneOnce sync.Once

	mu      sync.Mutex
	servers []*http.Server
	closed  bool

	// waitingHook, when set (by tests), is called once a wait has
	// subscribed and found fewer matches than it needs.
	waitingHook func()
}

// New builds a Server over st. log nil means slog.Default().
func New(st Store, opts Options, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.WaitTimeoutMax <= 0 {
		opts.WaitTimeoutMax = DefaultWaitTimeoutMax
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxConnectionsPerIP == 0 {
		opts.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{st: st, opts: opts, log: log, done: make(chan struct{})}
	s.limits = connlimit.New(connlimit.Options{
		MaxConnections:      opts.MaxConnections,
		MaxConnectionsPerIP: opts.MaxConnectionsPerIP,
		Refusal:             connlimit.HTTP(),
		// Read the request first and linger after the 503: HTTP clients
		// send before they read, and drop a reply that comes too early or
		// that a reset overtakes.
		AwaitRequest: true,
		Linger:       500 * time.Millisecond,
	})
	s.metrics = newMetrics(opts.Registry)
	s.echo = s.routes()
	s.handler = underWebroot(opts.Webroot, http.HandlerFunc(s.serveHTTP))
	return s
}

// Handler returns the server's handler: REST under /api/v1, /healthz,
// /metrics, and the UI for everything else.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on l until Shutdown or Close, then returns nil.
// Connections count against MaxConnections(PerIP) across every listener.
//
// ReadTimeout bounds reading a request (headers and body) only: net/http
// lifts the read deadline once the body has been read to its end, so
// long waits and event streams are not cut off (TestWaitAndEventsOutliveReadTimeout).
func (s *Server) Serve(l net.Listener) error {
	l = s.limits.Listen(l)
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       max(s.opts.ReadTimeout, 0),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("rest: serve: %w", err)
}

// Shutdown stops accepting connections, ends pending waits and event
// streams, and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.doneOnce.Do(func() { close(s.done) })
	var errs []error
	for _, hs := range s.takeServers() {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("rest: shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the server at once. Safe to call more than once.
func (s *Server) Close() error {
	s.doneOnce.Do(func() { close(s.done) })
	var errs []error
	for _, hs := range s.takeServers() {
		if err := hs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("rest: close: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *Server) takeServers() []*http.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	hs := s.servers
	s.servers = nil
	return hs
}

// serveHTTP applies CORS and auth, then hands the request to echo (API,
// health, metrics) or the UI.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.setWriteDeadline(w)
	p := r.URL.Path
	api := strings.HasPrefix(p, "/api/")
	if p == "/healthz" || s.public(p) {
		s.echo.ServeHTTP(w, r)
		return
	}
	if api && s.opts.CORSOrigin != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", s.opts.CORSOrigin)
		if s.opts.CORSOrigin != "*" {
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		h.Set("Access-Control-Expose-Headers", "Location, Content-Disposition")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if s.opts.Auth != nil {
		user, pass, ok := r.BasicAuth()
		if !ok || s.opts.Auth.Check(r.Context(), user, pass) != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="mailsandbox", charset="UTF-8"`)
			writeJSONError(w, http.StatusUnauthorized, "authentication required")
			return
		}
	}
	if api || p == "/metrics" || s.mounted(p) {
		s.echo.ServeHTTP(w, r)
		return
	}
	if s.opts.UI != nil {
		s.opts.UI.ServeHTTP(w, r)
		return
	}
	writeJSONError(w, http.StatusNotFound, "not found")
}

// public reports whether a Mount serves path p without auth.
func (s *Server) public(p string) bool {
	for _, m := range s.opts.Mounts {
		for _, pp := range m.Public {
			if p == pp {
				return true
			}
		}
	}
	return false
}

// mounted reports whether a Mount claims path p outside /api/.
func (s *Server) mounted(p string) bool {
	for _, m := range s.opts.Mounts {
		for _, mp := range m.Paths {
			if p == mp || (strings.HasSuffix(mp, "/") && strings.HasPrefix(p, mp)) {
				return true
			}
		}
	}
	return false
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", echo.MIMEApplicationJSON) // as echo's c.JSON sends it
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	b, _ := jsonMarshal(errorBody{Error: msg})
	w.Write(append(b, '\n'))
}
