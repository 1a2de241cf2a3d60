// Package checks serves the message checks (packages under
// capture/checks) over HTTP, mounted on the REST server through
// rest.Options.Mounts:
//
//   - native JSON routes, GET /api/v1/messages/{id}/checks/html, /links,
//     /spam, /auth and /bulk, whose errors are {"error": "…"} through the
//     REST server's error handler;
//   - Mailpit's routes, GET /api/v1/message/{ID}/html-check, /link-check
//     (?follow=true) and /sa-check, in Mailpit's shapes with its plain-text
//     errors.
//
// Checks run only when asked for, never at ingest. A check whose backend
// fails (spamd down, DNS offline) answers 200 with the failure inside the
// result: the message is fine, the check could not run.
package checks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/checks/authcheck"
	"github.com/mailsandbox/mailsandbox/capture/checks/bulkcheck"
	"github.com/mailsandbox/mailsandbox/capture/checks/htmlcheck"
	"github.com/mailsandbox/mailsandbox/capture/checks/linkcheck"
	"github.com/mailsandbox/mailsandbox/capture/checks/spamcheck"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the checks read (*store.Store).
type Store interface {
	Get(ctx context.Context, id string) (store.Message, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	Search(ctx context.Context, q store.Query) ([]store.Message, int, error)
}

var _ Store = (*store.Store)(nil)

// Options configure the checks. The zero value runs every check but spam,
// refuses internal link targets and uses the system resolver.
type Options struct {
	// SpamAssassin is spamd's host:port; "" answers the spam check with
	// "not configured".
	SpamAssassin string
	// SpamTimeout bounds one spamd exchange; 0: spamcheck.DefaultTimeout.
	SpamTimeout time.Duration
	// AllowInternalLinks lets the link check reach loopback, private and
	// link-local addresses (--allow-internal-link-checks).
	AllowInternalLinks bool
	// LinkTimeout bounds one URL's check; 0: linkcheck.DefaultTimeout.
	LinkTimeout time.Duration
	// Resolver answers the authentication check's DNS; nil: the system's.
	Resolver authcheck.Resolver
	// AuthTimeout bounds the authentication check; 0:
	// authcheck.DefaultTimeout.
	AuthTimeout time.Duration
}

// Handler serves the check routes.
type Handler struct {
	st    Store
	opts  Options
	log   *slog.Logger
	html  func() (*htmlcheck.Checker, error) // parsed on first use
	links *linkcheck.Checker
	spam  *spamcheck.Client
}

// New builds the handler. The embedded caniemail data is parsed on the
// first HTML check, not at start-up: parsed, it holds 4 MB of heap that a
// sandbox which never runs the check would carry (issue #20's peak RSS).
func New(st Store, opts Options, log *slog.Logger) (*Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{st: st, opts: opts, log: log, html: sync.OnceValues(htmlcheck.New),
		links: linkcheck.New(linkcheck.Options{AllowInternal: opts.AllowInternalLinks, Timeout: opts.LinkTimeout})}
	if opts.SpamAssassin != "" {
		h.spam = spamcheck.New(spamcheck.Options{Addr: opts.SpamAssassin, Timeout: opts.SpamTimeout})
	}
	return h, nil
}

// Register adds the routes (a rest.Mount's Register).
func (h *Handler) Register(e *echo.Echo) {
	g := e.Group("/api/v1")
	g.GET("/messages/:id/checks/html", h.nativeHTML)
	g.GET("/messages/:id/checks/links", h.nativeLinks)
	g.GET("/messages/:id/checks/spam", h.nativeSpam)
	g.GET("/messages/:id/checks/auth", h.nativeAuth)
	g.GET("/messages/:id/checks/bulk", h.nativeBulk)
	g.GET("/message/:id/html-check", h.mailpitHTML)
	g.GET("/message/:id/link-check", h.mailpitLinks)
	g.GET("/message/:id/sa-check", h.mailpitSpam)
}

// loaded is a message read for checking.
type loaded struct {
	msg    store.Message
	raw    []byte
	parsed *mailparse.Message
}

func (h *Handler) load(ctx context.Context, id string) (*loaded, error) {
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	if id == "" {
		return nil, fmt.Errorf("message id: %w", store.ErrInvalid)
	}
	m, err := h.st.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	raw, err := h.st.Raw(ctx, id)
	if err != nil {
		return nil, err
	}
	return &loaded{msg: m, raw: raw, parsed: mailparse.Parse(raw)}, nil
}

// list splits repeated and comma-separated query values.
func list(c echo.Context, name string) []string {
	var out []string
	for _, v := range c.QueryParams()[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func boolParam(c echo.Context, name string) (bool, error) {
	switch strings.ToLower(c.QueryParam(name)) {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	}
	return false, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s: want true or false, got %q", name, c.QueryParam(name)))
}

// clientIP is the connecting IP for SPF: ?ip= when given (the IP the mail
// will be sent from in production is what matters), else the address the
// message came from over SMTP (stored with it), else unknown.
func clientIP(c echo.Context, env store.Envelope) (net.IP, error) {
	v := c.QueryParam("ip")
	if v == "" {
		return net.ParseIP(env.ClientIP), nil // nil when not stored
	}
	ip := net.ParseIP(v)
	if ip == nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("ip: not an IP address: %q", v))
	}
	return ip, nil
}

// HTMLAnswer is the native HTML check's answer.
type HTMLAnswer struct {
	HasHTML bool `json:"has_html"`
	*htmlcheck.Result
}

func (h *Handler) nativeHTML(c echo.Context) error {
	l, err := h.load(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	hc, err := h.html()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, HTMLAnswer{HasHTML: l.parsed.HTML != "", Result: hc.Check(l.parsed.HTML, htmlOptions(c))})
}

func (h *Handler) nativeLinks(c echo.Context) error {
	follow, err := boolParam(c, "follow")
	if err != nil {
		return err
	}
	l, err := h.load(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	refs := linkcheck.Extract(l.parsed.HTML, l.parsed.Text)
	return c.JSON(http.StatusOK, h.links.Check(c.Request().Context(), refs, follow))
}

// errSpamOff is the spam check's answer without --spamassassin.
const errSpamOff = "SpamAssassin is not configured (start with --spamassassin host:783)"

func (h *Handler) spamCheck(ctx context.Context, raw []byte) *spamcheck.Result {
	if h.spam == nil {
		return &spamcheck.Result{Rules: []spamcheck.Rule{}, Error: errSpamOff}
	}
	r := h.spam.Check(ctx, raw)
	if r.Error != "" {
		h.log.Warn("spam check failed", "err", r.Error)
	}
	return r
}

func (h *Handler) nativeSpam(c echo.Context) error {
	l, err := h.load(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.spamCheck(c.Request().Context(), l.raw))
}

func (h *Handler) authCheck(c echo.Context, l *loaded) (*authcheck.Result, error) {
	ip, err := clientIP(c, l.msg.Envelope)
	if err != nil {
		return nil, err
	}
	helo := c.QueryParam("helo")
	if helo == "" {
		helo = l.msg.Envelope.Helo
	}
	in := authcheck.Input{Raw: l.raw, MailFrom: l.msg.Envelope.From, ClientIP: ip, HELO: helo}
	return authcheck.Check(c.Request().Context(), in, authcheck.Options{Resolver: h.opts.Resolver, Timeout: h.opts.AuthTimeout}), nil
}

func (h *Handler) nativeAuth(c echo.Context) error {
	l, err := h.load(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	r, err := h.authCheck(c, l)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// BulkAnswer is the native bulk-sender check's answer, with the
// authentication result its DKIM rules used.
type BulkAnswer struct {
	*bulkcheck.Result
	Auth *authcheck.Result `json:"auth"`
}

func (h *Handler) nativeBulk(c echo.Context) error {
	l, err := h.load(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	a, err := h.authCheck(c, l)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, BulkAnswer{Result: bulkcheck.Check(l.parsed, l.msg.Envelope.From, a), Auth: a})
}

// mailpitLoad resolves Mailpit's {ID} ("latest" is the newest message) and
// answers Mailpit's plain-text errors itself; ok is false when it did.
func (h *Handler) mailpitLoad(c echo.Context) (*loaded, bool, error) {
	ctx := c.Request().Context()
	id := c.Param("id")
	if id == "latest" {
		ms, _, err := h.st.Search(ctx, store.Query{Limit: 1})
		if err != nil {
			return nil, false, mailpitText(c, http.StatusInternalServerError, err.Error())
		}
		if len(ms) == 0 {
			return nil, false, mailpitText(c, http.StatusNotFound, "Message not found")
		}
		id = ms[0].ID
	}
	l, err := h.load(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return nil, false, mailpitText(c, http.StatusNotFound, "404 page not found")
	case err != nil:
		h.log.Error("load message for a check", "id", id, "err", err)
		return nil, false, mailpitText(c, http.StatusInternalServerError, "internal error")
	}
	return l, true, nil
}

func mailpitText(c echo.Context, code int, msg string) error {
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(code, "text/plain; charset=utf-8", []byte(msg))
}

func htmlOptions(c echo.Context) htmlcheck.Options {
	return htmlcheck.Options{Platforms: list(c, "platform"), Families: list(c, "family")}
}
