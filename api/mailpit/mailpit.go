// Package mailpit serves Mailpit's HTTP API (v1.33) over the store, at
// Mailpit's paths, so that Mailpit's client libraries and test helpers
// work unchanged: /api/v1/messages, /search, /message/{ID}…, /send,
// /info, /webui, /swagger.json, /view/{ID}.html|.txt, the /api/events
// WebSocket, /livez and /readyz.
//
// It is an adapter: it translates Mailpit's shapes, status codes and
// plain-text errors and owns no state. Mailpit keeps one global mailbox;
// this API shows the per-recipient store at the message level: one
// summary per stored message, Read when every copy is seen, and reading,
// marking and deleting act on every copy. IDs are the store's.
//
// Handlers write their answers themselves (never return an error to echo),
// because Mailpit's errors are plain text, not the native API's JSON.
package mailpit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what this API needs from the mail store (*store.Store).
type Store interface {
	Search(ctx context.Context, q store.Query) ([]store.Message, int, error)
	SearchCapped(ctx context.Context, q store.Query, limit int) ([]store.Message, int, bool, error)
	Find(ctx context.Context, q store.Query) ([]store.Message, error)
	Count(ctx context.Context, q store.Query) (int, error)
	Unread(ctx context.Context) (int, error)
	Get(ctx context.Context, id string) (store.Message, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	Ingest(ctx context.Context, env store.Envelope, raw []byte) (string, error)
	SetSeen(ctx context.Context, id, mailbox string, seen bool) error
	SetSeenMatching(ctx context.Context, q store.Query, seen bool) error
	DeleteMatching(ctx context.Context, q store.Query) error
	Subscribe(ctx context.Context) <-chan store.Event
	Stats(ctx context.Context) (store.Stats, error)
}

var _ Store = (*store.Store)(nil)

// Relay puts a captured message on the relay queue (as rest.Relay).
// Errors wrapping store.ErrNotFound answer 404, others 400.
type Relay interface {
	Release(ctx context.Context, messageID string, to []string) error
}

// Defaults for zero Options fields.
const (
	DefaultMaxMessageBytes = 32 << 20
	// maxJSONBytes bounds the JSON bodies of PUT /messages.
	maxJSONBytes = 1 << 20
)

// Options configure a Server. The zero value serves every route, with
// release answering that no relay is configured.
type Options struct {
	// Relay releases messages; nil answers release with 400 as Mailpit
	// does without a relay.
	Relay Relay
	// MaxMessageBytes caps a message built by POST /api/v1/send (413
	// beyond); 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// Version is reported by /api/v1/info and the stats event.
	Version string
	// Database names the store in /api/v1/info ("" for a temporary one).
	Database string
}

// Server serves Mailpit's API.
type Server struct {
	st      Store
	opts    Options
	log     *slog.Logger
	started time.Time
}

// New builds a Server over st. log nil means slog.Default().
func New(st Store, opts Options, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return &Server{st: st, opts: opts, log: log, started: time.Now()}
}

// Paths are the paths outside /api/ this API serves (for rest.Mount).
func (s *Server) Paths() []string { return []string{"/view/", "/livez", "/readyz"} }

// Register adds the routes to e. DELETE /api/v1/messages is the native
// route, which takes Mailpit's {"IDs":[…]} too.
func (s *Server) Register(e *echo.Echo) {
	g := e.Group("/api/v1")
	g.GET("/messages", s.listMessages)
	g.PUT("/messages", s.setReadStatus)
	g.GET("/search", s.search)
	g.DELETE("/search", s.deleteSearch)
	g.GET("/message/:id", s.getMessage)
	g.GET("/message/:id/headers", s.headers)
	g.GET("/message/:id/raw", s.raw)
	g.GET("/message/:id/part/:part", s.part)
	g.GET("/message/:id/part/:part/thumb", s.thumb)
	g.POST("/message/:id/release", s.release)
	g.POST("/send", s.send)
	s.tagRoutes(g)
	g.GET("/info", s.info)
	g.GET("/webui", s.webUI)
	g.GET("/swagger.json", s.swagger)
	e.GET("/api/events", s.events)
	e.GET("/view/:file", s.view)
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	e.GET("/livez", ok)
	e.GET("/readyz", s.readyz)
}

// readyz is 200 once the store answers.
func (s *Server) readyz(c echo.Context) error {
	if _, err := s.st.Count(c.Request().Context(), store.Query{}); err != nil {
		return c.NoContent(http.StatusServiceUnavailable)
	}
	return c.NoContent(http.StatusOK)
}

// text answers a plain-text body, as Mailpit's mutations and errors do.
func text(c echo.Context, code int, msg string) error {
	return c.Blob(code, "text/plain", []byte(msg))
}

func okText(c echo.Context) error { return text(c, http.StatusOK, "ok") }

// fail answers err as Mailpit would: 404 for an unknown message, 503 while
// the store closes, 500 (logged) for the rest; bad input is answered
// before reaching here, with 400.
func (s *Server) fail(c echo.Context, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return text(c, http.StatusNotFound, "Message not found")
	case errors.Is(err, store.ErrInvalid):
		return text(c, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return text(c, http.StatusServiceUnavailable, "server is shutting down")
	}
	s.log.Error("mailpit api request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	return text(c, http.StatusInternalServerError, "internal error")
}
