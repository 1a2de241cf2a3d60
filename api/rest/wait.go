package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// GET /messages/wait?<filters>&timeout=10s&count=1
//
// Blocks until count messages match, then answers {"messages":[…]}: the
// matches, newest first, at most count of them. Without since, mail already
// stored counts; with since, only mail received at or after it. It listens
// to the store's events (subscribed before the first query, so nothing
// slips between) and checks only each new message against the filter; it
// never polls. Timeout answers 408.
func (s *Server) waitMessages(c echo.Context) error {
	q, err := parseFilter(c)
	if err != nil {
		return err
	}
	if c.QueryParam("limit") != "" || c.QueryParam("offset") != "" {
		return errBadRequest("wait takes count, not limit or offset")
	}
	count := 1
	if v := c.QueryParam("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxLimit {
			return errBadRequest("count: want an integer from 1 to %d, got %q", store.MaxLimit, v)
		}
		count = n
	}
	timeout, err := s.waitTimeout(c.QueryParam("timeout"))
	if err != nil {
		return err
	}

	LiftWriteDeadline(c.Response())
	s.metrics.waiting.Inc()
	defer s.metrics.waiting.Dec()
	ctx := c.Request().Context()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	msgs, err := s.wait(ctx, timer.C, q, count)
	switch {
	case err == nil:
		s.metrics.waits.WithLabelValues("found").Inc()
		return c.JSON(http.StatusOK, map[string]any{"messages": toSummaries(msgs)})
	case err == errWaitTimeout:
		s.metrics.waits.WithLabelValues("timeout").Inc()
		msg := fmt.Sprintf("no matching message within %s", timeout)
		if count > 1 {
			msg = fmt.Sprintf("fewer than %d matching messages within %s (%d found)", count, timeout, len(msgs))
		}
		return echo.NewHTTPError(http.StatusRequestTimeout, msg)
	case ctx.Err() != nil:
		s.metrics.waits.WithLabelValues("canceled").Inc()
		return err
	default:
		s.metrics.waits.WithLabelValues("error").Inc()
		return err
	}
}

// waitTimeout parses "10s", "1m30s" or a number of seconds.
func (s *Server) waitTimeout(v string) (time.Duration, error) {
	if v == "" {
		return min(DefaultWaitTimeout, s.opts.WaitTimeoutMax), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || f != f {
			return 0, errBadRequest("timeout: want a duration such as 10s, got %q", v)
		}
		if f > s.opts.WaitTimeoutMax.Seconds() {
			f = s.opts.WaitTimeoutMax.Seconds()
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return 0, errBadRequest("timeout: must not be negative, got %q", v)
	}
	return min(d, s.opts.WaitTimeoutMax), nil
}

// errStreamLost ends a wait whose event stream keeps closing at once (the
// store is closing).
var errStreamLost = fmt.Errorf("rest: wait: %w", store.ErrClosed)

// errWaitTimeout ends a wait whose timeout passed.
var errWaitTimeout = errors.New("rest: wait timed out")

// wait returns once count messages match q (newest first, at most count),
// or, when timeout fires first, errWaitTimeout and what matched so far.
// Queries run under ctx alone: a slow store delays the answer but cannot
// turn mail that is there into a timeout.
func (s *Server) wait(ctx context.Context, timeout <-chan time.Time, q store.Query, count int) ([]store.Message, error) {
	q.Limit, q.Offset = count, 0
	matched := map[string]store.Message{}
	var events <-chan store.Event
	var subCancel context.CancelFunc = func() {}
	defer func() { subCancel() }()
	lost := 0
	// full re-reads every match: at the start, after a deletion, and after
	// the event stream was cut.
	full := func() error {
		subCancel()
		var subCtx context.Context
		subCtx, subCancel = context.WithCancel(ctx)
		events = s.st.Subscribe(subCtx)
		msgs, err := s.st.Find(ctx, q)
		if err != nil {
			return err
		}
		clear(matched)
		for _, m := range msgs {
			matched[m.ID] = m
		}
		return nil
	}
	if err := full(); err != nil {
		return nil, err
	}
	mailbox := store.NormalizeAddress(q.Mailbox)
	if len(matched) < count && s.waitingHook != nil {
		s.waitingHook()
	}
	for len(matched) < count {
		select {
		case <-timeout:
			return newestFirst(matched, count), errWaitTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, fmt.Errorf("rest: wait: %w", store.ErrClosed)
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					events = nil // ctx.Done ends the loop
					continue
				}
				if lost++; lost > 3 {
					return nil, errStreamLost
				}
				if err := full(); err != nil {
					return nil, err
				}
				continue
			}
			lost = 0
			switch ev.Kind {
			case store.EventMessage:
				if mailbox != "" && !slices.Contains(ev.Mailboxes, mailbox) {
					continue
				}
				m, ok, err := s.matches(ctx, q, ev.MessageID)
				if err != nil {
					return nil, err
				}
				if ok {
					matched[m.ID] = m
				}
			case store.EventTags:
				// Tagged by hand after it came: it may match a tag filter now.
				if q.Tag == "" || ev.MessageID == "" {
					continue
				}
				m, ok, err := s.matches(ctx, q, ev.MessageID)
				if err != nil {
					return nil, err
				}
				if ok && (mailbox == "" || slices.Contains(m.Mailboxes, mailbox)) {
					matched[m.ID] = m
				}
			case store.EventDeleted:
				if ev.MessageID == "" && len(ev.Mailboxes) == 0 && ev.Mailbox != "" {
					continue // the per-folder twin of a deletion already seen
				}
				if _, had := matched[ev.MessageID]; had || ev.MessageID == "" {
					if err := full(); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return newestFirst(matched, count), nil
}

// matches checks one new message against q. The caller has checked the
// mailbox against the event, so the store is asked only about that one
// message (by id: no index of all mail is read, whatever the size of the
// store), and not at all when q has no text filters.
func (s *Server) matches(ctx context.Context, q store.Query, id string) (store.Message, bool, error) {
	m, err := s.st.Get(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return m, false, nil // deleted already
		}
		return m, false, err
	}
	at := m.ReceivedAt
	if (!q.Since.IsZero() && at.Before(q.Since)) || (!q.Before.IsZero() && !at.Before(q.Before)) {
		return m, false, nil
	}
	if q.To == "" && q.From == "" && q.Subject == "" && q.Text == "" && q.Tag == "" {
		return m, true, nil
	}
	q.Mailbox, q.Folder, q.ID = "", "", id
	q.Since, q.Before = time.Time{}, time.Time{}
	q.Limit, q.Offset = 1, 0
	msgs, err := s.st.Find(ctx, q)
	if err != nil {
		return m, false, err
	}
	for _, x := range msgs {
		if x.ID == id {
			return m, true, nil
		}
	}
	return m, false, nil
}

func newestFirst(matched map[string]store.Message, count int) []store.Message {
	out := make([]store.Message, 0, len(matched))
	for _, m := range matched {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b store.Message) int {
		if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(out) > count {
		out = out[:count]
	}
	return out
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
