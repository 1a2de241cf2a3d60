package mailpit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/api/mailpit/search"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// paging reads start and limit as Mailpit does: anything unreadable is the
// default (0 and 50); the store caps a page at store.MaxLimit.
func paging(c echo.Context) (start, limit int) {
	start, limit = 0, 50
	if n, err := strconv.Atoi(c.QueryParam("start")); err == nil && n > 0 {
		start = n
	}
	if n, err := strconv.Atoi(c.QueryParam("limit")); err == nil && n > 0 {
		limit = min(n, store.MaxLimit)
	}
	return start, limit
}

// before reads the before parameter: messages received before it (RFC
// 3339, or Unix milliseconds).
func before(c echo.Context) (time.Time, error) {
	v := strings.TrimSpace(c.QueryParam("before"))
	if v == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	// A "+01:00" offset sent unescaped arrives as " 01:00".
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
	if err != nil {
		return time.Time{}, fmt.Errorf("before: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", v)
	}
	return t, nil
}

// page runs q and fills the list envelope. Unread counts are totals less
// the read, which are few in a sandbox and cheap to count (store.CondRead).
// A search's messages_count is exact up to store.CountCap matches and
// that cap beyond (README, "Coming from Mailpit"): counting every match
// of a filter matching most of the store would read every message.
func (s *Server) page(c echo.Context, q store.Query, filtered bool) error {
	ctx := c.Request().Context()
	msgs, matches, _, err := s.st.SearchCapped(ctx, q, store.CountCap)
	if err != nil {
		return s.fail(c, err)
	}
	readOnly := []store.Cond{{Field: store.CondRead}}
	read, err := s.st.Count(ctx, store.Query{Conds: readOnly})
	if err != nil {
		return s.fail(c, err)
	}
	total, matchRead := matches, read
	if filtered {
		if total, err = s.st.Count(ctx, store.Query{}); err != nil {
			return s.fail(c, err)
		}
		// With nothing read, no match is: the store need not walk the
		// matches looking for read ones (PostgreSQL did, for seconds).
		matchRead = 0
		if read > 0 {
			rq := q
			rq.Conds = append(append([]store.Cond{}, q.Conds...), readOnly...)
			if matchRead, err = s.st.Count(ctx, rq); err != nil {
				return s.fail(c, err)
			}
		}
	}
	tags, err := s.allTags(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	out := listJSON{
		Total: total, Unread: total - read, Count: len(msgs), MessagesCount: matches, MessagesUnread: max(0, matches-matchRead),
		Start: q.Offset, Tags: tags, Messages: make([]summaryJSON, 0, len(msgs)),
	}
	for _, m := range msgs {
		out.Messages = append(out.Messages, toSummary(m))
	}
	return c.JSON(http.StatusOK, out)
}

// listMessages is GET /api/v1/messages: newest first.
func (s *Server) listMessages(c echo.Context) error {
	start, limit := paging(c)
	b, err := before(c)
	if err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	return s.page(c, store.Query{Limit: limit, Offset: start, Before: b}, !b.IsZero())
}

// parseQuery compiles the query parameter (and tz) or says what is wrong.
func parseQuery(c echo.Context, query string) ([]store.Cond, error) {
	loc, err := search.Location(c.QueryParam("tz"))
	if err != nil {
		return nil, err
	}
	return search.Parse(query, loc)
}

// search is GET /api/v1/search.
func (s *Server) search(c echo.Context) error {
	query := strings.TrimSpace(c.QueryParam("query"))
	if query == "" {
		return text(c, http.StatusBadRequest, "Error: no search query")
	}
	conds, err := parseQuery(c, query)
	if err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	start, limit := paging(c)
	b, err := before(c)
	if err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	return s.page(c, store.Query{Conds: conds, Limit: limit, Offset: start, Before: b}, true)
}

// deleteSearch is DELETE /api/v1/search: every copy of every match goes.
func (s *Server) deleteSearch(c echo.Context) error {
	query := strings.TrimSpace(c.QueryParam("query"))
	if query == "" {
		return text(c, http.StatusBadRequest, "Error: no search query")
	}
	conds, err := parseQuery(c, query)
	if err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	if err := s.st.DeleteMatching(c.Request().Context(), store.Query{Conds: conds}); err != nil {
		return s.fail(c, err)
	}
	return okText(c)
}

type readStatusRequest struct {
	IDs    []string
	Read   bool
	Search string
}

// readJSON decodes a small JSON body into v; the error is a plain reason.
func readJSON(c echo.Context, v any) error {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, maxJSONBytes)
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return fmt.Errorf("request body larger than %d bytes", mbe.Limit)
		case errors.Is(err, io.EOF):
			return errors.New("invalid JSON body: empty body")
		}
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON body: unexpected data after the JSON value")
	}
	return nil
}

// setReadStatus is PUT /api/v1/messages: {"IDs":[…],"Read":bool} or
// {"Search":"…","Read":bool} (with tz), or neither for every message.
// Every copy of a message changes. Unknown IDs are skipped, as Mailpit
// skips them.
func (s *Server) setReadStatus(c echo.Context) error {
	var req readStatusRequest
	if err := readJSON(c, &req); err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	ctx := c.Request().Context()
	search := strings.TrimSpace(req.Search)
	if len(req.IDs) > 0 && search != "" {
		return text(c, http.StatusBadRequest, "You may specify either IDs or a search query, not both")
	}
	switch {
	case len(req.IDs) > 0:
		for _, id := range req.IDs {
			if err := s.st.SetSeen(ctx, id, "", req.Read); err != nil && !errors.Is(err, store.ErrNotFound) {
				return s.fail(c, err)
			}
		}
	case search != "":
		conds, err := parseQuery(c, search)
		if err != nil {
			return text(c, http.StatusBadRequest, err.Error())
		}
		if err := s.st.SetSeenMatching(ctx, store.Query{Conds: conds}, req.Read); err != nil {
			return s.fail(c, err)
		}
	default:
		if err := s.st.SetSeenMatching(ctx, store.Query{}, req.Read); err != nil {
			return s.fail(c, err)
		}
	}
	return okText(c)
}

// readJSONBytes decodes exactly one JSON value from body.
func readJSONBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON body: unexpected data after the JSON value")
	}
	return nil
}
