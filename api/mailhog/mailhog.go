// Package mailhog serves MailHog's API v2 read routes over the store, in
// MailHog's shapes, so MailHog helpers (cypress-mailhog, mailhog-node, the
// Java and PHP clients) work unchanged:
//
//	GET /api/v2/messages?start&limit          newest first
//	GET /api/v2/search?kind=from|to|containing&query&start&limit
//
// MailHog's deletes (DELETE /api/v1/messages and /api/v1/messages/{id})
// share their paths with the native API, whose handlers answer as MailHog's
// clients expect; /api/v2/jim belongs to the fault-injection layer.
//
// The package is an adapter: it owns no state and no SQL, and reaches the
// store through [Store]. It is mounted on the REST server with [Mount].
package mailhog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the MailHog API needs from the mail store (*store.Store).
type Store interface {
	Search(ctx context.Context, q store.Query) ([]store.Message, int, error)
	Raw(ctx context.Context, id string) ([]byte, error)
}

var _ Store = (*store.Store)(nil)

// Paging, as MailHog: 50 by default, at most 250.
const (
	defaultLimit = 50
	maxLimit     = 250
)

// Register adds the routes to e. Its signature is rest.Mount's Register;
// every path is under /api/, so the mount needs no Paths.
func Register(st Store) func(e *echo.Echo) {
	a := &api{st: st}
	return func(e *echo.Echo) {
		e.GET("/api/v2/messages", a.messages)
		e.GET("/api/v2/search", a.search)
	}
}

type api struct{ st Store }

// result is MailHog's v2 list envelope.
type result struct {
	Total int       `json:"total"`
	Count int       `json:"count"`
	Start int       `json:"start"`
	Items []message `json:"items"`
}

// startLimit reads paging the way MailHog does: a value that is not a
// positive integer means the default, and limit is capped rather than
// refused.
func startLimit(c echo.Context) (start, limit int) {
	limit = defaultLimit
	if n, err := strconv.Atoi(c.QueryParam("start")); err == nil && n > 0 {
		start = n
	}
	if n, err := strconv.Atoi(c.QueryParam("limit")); err == nil && n > 0 {
		limit = min(n, maxLimit)
	}
	return start, limit
}

// GET /api/v2/messages
func (a *api) messages(c echo.Context) error {
	start, limit := startLimit(c)
	return a.list(c, store.Query{Offset: start, Limit: limit}, start)
}

// GET /api/v2/search?kind&query: a case-insensitive substring of the
// sender (envelope or From), a recipient (envelope, To or Cc), or, for
// "containing", the subject or body text. MailHog answers a bad kind or an
// empty query with a bare 400; here the 400 says why.
func (a *api) search(c echo.Context) error {
	start, limit := startLimit(c)
	q := store.Query{Offset: start, Limit: limit}
	query := c.QueryParam("query")
	if query == "" {
		return c.String(http.StatusBadRequest, "query is required")
	}
	switch kind := c.QueryParam("kind"); kind {
	case "from":
		q.From = query
	case "to":
		q.To = query
	case "containing":
		q.Text = query
	default:
		return c.String(http.StatusBadRequest, fmt.Sprintf("kind: want from, to or containing, got %q", kind))
	}
	return a.list(c, q, start)
}

func (a *api) list(c echo.Context, q store.Query, start int) error {
	ctx := c.Request().Context()
	msgs, total, err := a.st.Search(ctx, q)
	if err != nil {
		return fmt.Errorf("mailhog: list messages: %w", err)
	}
	res := result{Total: total, Start: start, Items: make([]message, 0, len(msgs))}
	for _, m := range msgs {
		raw, err := a.st.Raw(ctx, m.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return fmt.Errorf("mailhog: read message %s: %w", m.ID, err)
		}
		res.Items = append(res.Items, toMessage(m, raw))
	}
	res.Count = len(res.Items)
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("mailhog: encode: %w", err)
	}
	// MailHog's own content type; its clients parse the body regardless.
	return c.Blob(http.StatusOK, "text/json", b)
}
