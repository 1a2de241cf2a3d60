package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// apiPrefix is the base of every REST route.
const apiPrefix = "/api/v1"

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe, s.recoverPanic)

	health := func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
	e.GET("/healthz", health)
	e.HEAD("/healthz", health)
	metricsHandler := echo.WrapHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	e.GET("/metrics", metricsHandler)
	e.HEAD("/metrics", metricsHandler)

	g := e.Group(apiPrefix)
	// read routes answer HEAD too (curl -I): net/http drops the body of a
	// HEAD request and keeps the headers. Wait and events block, so they
	// answer GET only.
	read := func(path string, h echo.HandlerFunc) {
		g.GET(path, h)
		g.HEAD(path, h)
	}
	read("/mailboxes", s.listMailboxes)
	read("/mailboxes/:address/messages", s.mailboxMessages)
	g.DELETE("/mailboxes/:address", s.deleteMailbox)
	// GET /messages is Mailpit's list (api/mailpit, mounted below); native
	// search lives beside wait. Echo's static segments beat /messages/:id.
	read("/messages/search", s.searchMessages)
	g.DELETE("/messages", s.deleteAll)
	g.POST("/messages", s.submitMessage)
	g.GET("/messages/wait", s.waitMessages)
	read("/messages/:id", s.getMessage)
	read("/messages/:id/raw", s.rawMessage)
	read("/messages/:id/parts/:part", s.messagePart)
	g.PATCH("/messages/:id", s.patchMessage)
	g.DELETE("/messages/:id", s.deleteMessage)
	g.POST("/messages/:id/release", s.releaseMessage)
	s.tagRoutes(g)
	read("/relay/queue", s.relayQueue)
	g.DELETE("/relay/queue/:id", s.dropDelivery)
	g.POST("/relay/queue/:id/retry", s.retryDelivery)
	g.GET("/events", s.events)
	read("/openapi.json", s.openAPI)
	for _, m := range s.opts.Mounts {
		m.Register(e)
	}
	return e
}

type errorBody struct {
	Error string `json:"error"`
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// errBadRequest and friends build the HTTP errors handlers return.
func errBadRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// httpError maps any handler error to a status and a message: the one place
// where store and parse errors become HTTP.
func httpError(err error) (int, string) {
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		msg := fmt.Sprint(he.Message)
		if he.Message == nil || msg == "" || msg == http.StatusText(he.Code) {
			msg = strings.ToLower(http.StatusText(he.Code))
		}
		return he.Code, msg
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("message larger than %d bytes", mbe.Limit)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, mailparse.ErrNoPart):
		return http.StatusNotFound, publicText(err)
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, publicText(err)
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict, publicText(err)
	case errors.Is(err, store.ErrLocked):
		return http.StatusConflict, publicText(err)
	case errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, "server is shutting down"
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "request canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request timed out"
	}
	return http.StatusInternalServerError, "internal error"
}

// publicText is err's message without the store package's name on its
// sentinels: "message X: store: not found" reads "message X: not found".
func publicText(err error) string {
	msg := err.Error()
	for _, s := range []error{store.ErrNotFound, store.ErrInvalid, store.ErrExists, store.ErrLocked} {
		msg = strings.ReplaceAll(msg, s.Error(), strings.TrimPrefix(s.Error(), "store: "))
	}
	return msg
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := httpError(err)
	if code >= 500 {
		s.log.Error("http request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", code, "err", err)
	}
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	if c.Request().Method == http.MethodHead {
		c.NoContent(code)
		return
	}
	if err := c.JSON(code, errorBody{Error: msg}); err != nil {
		s.log.Debug("write error response", "err", err)
	}
}

// observe counts requests by route and status.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || strings.HasSuffix(route, "/*") {
			route = "other"
		}
		status := strconv.Itoa(c.Response().Status)
		s.metrics.requests.WithLabelValues(c.Request().Method, route, status).Inc()
		s.metrics.duration.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// recoverPanic turns a handler panic into a logged 500.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic in http handler", "path", c.Request().URL.Path, "panic", r)
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// param returns a decoded path parameter. Echo matches on the raw path when
// the URL has escapes (an address like "a%2Fb@x"), so unescape here.
func param(c echo.Context, name string) string {
	v := c.Param(name)
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}

// parseFilter reads the search filters and paging shared by listing, search
// and wait.
func parseFilter(c echo.Context) (store.Query, error) {
	var q store.Query
	q.To = c.QueryParam("to")
	q.From = c.QueryParam("from")
	q.Subject = c.QueryParam("subject")
	q.Text = c.QueryParam("text")
	q.Mailbox = c.QueryParam("mailbox")
	q.Tag = c.QueryParam("tag")
	var err error
	if q.Since, err = parseTime(c, "since"); err != nil {
		return q, err
	}
	if q.Before, q.BeforeID, err = parseBefore(c); err != nil {
		return q, err
	}
	if q.Limit, err = parseCount(c, "limit"); err != nil {
		return q, err
	}
	q.Limit = min(q.Limit, store.MaxLimit)
	if q.Offset, err = parseCount(c, "offset"); err != nil {
		return q, err
	}
	return q, nil
}

func parseTime(c echo.Context, name string) (time.Time, error) {
	v := strings.TrimSpace(c.QueryParam(name))
	if v == "" {
		return time.Time{}, nil
	}
	// RFC 3339 (5.6) allows "t" and "z" in lower case, and a space for
	// the "T"; T and Z are its only letters, so upper-casing is safe.
	v = strings.ToUpper(v)
	if len(v) > 10 && v[10] == ' ' {
		v = v[:10] + "T" + v[11:]
	}
	// A "+01:00" offset sent unescaped in a query string arrives as " 01:00".
	v = strings.ReplaceAll(v, " ", "+")
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errBadRequest("%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", name, c.QueryParam(name))
	}
	return t, nil
}

func parseCount(c echo.Context, name string) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		if err != nil && errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
			return 1<<31 - 1, nil
		}
		return 0, errBadRequest("%s: want a non-negative integer, got %q", name, v)
	}
	return min(n, 1<<31-1), nil
}

// readJSON decodes a small JSON request body into v. An empty body leaves v
// untouched when optional is true.
func readJSON(c echo.Context, v any, optional bool) error {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20)
	if err := decodeJSON(r, v); err != nil {
		if errors.Is(err, io.EOF) && optional {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			// httpError words a bare MaxBytesError for POST /messages.
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		}
		return errBadRequest("invalid JSON body: %s", jsonProblem(err))
	}
	return nil
}

// errTrailingJSON refuses a body with more after its JSON value: two
// objects sent by mistake must not act as the first alone.
var errTrailingJSON = errors.New("unexpected data after the JSON value")

// decodeJSON reads exactly one JSON value from r into v. An empty body is
// io.EOF.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errTrailingJSON
	}
	return nil
}

// jsonProblem says what is wrong with a JSON body in the request's terms
// (field names and JSON types), not in Go's.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends inside a JSON value"
	case errors.As(err, &ute):
		if ute.Field == "" {
			return "want " + jsonKind(ute.Type)
		}
		return fmt.Sprintf("%q must be %s", ute.Field, jsonKind(ute.Type))
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	return err.Error()
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if t == reflect.TypeFor[stringList]() {
		return "a string or an array of strings"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}
