package mailpit

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// frame is one WebSocket message, as Mailpit sends them.
type frame struct {
	Type string
	Data any
}

type updateJSON struct {
	ID   string
	Read bool
}

type deleteJSON struct {
	ID string
}

// writeTimeout bounds one frame's write: a client that stops reading is
// dropped rather than holding the store's events up.
const writeTimeout = 10 * time.Second

// events is GET /api/events: a WebSocket of Mailpit's frames — new (a
// summary), update (ID, Read), delete (ID), prune and truncate (reload),
// stats (Total, Unread, Version) after each burst of changes — fed by the
// store's events.
func (s *Server) events(c echo.Context) error {
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	// Subscribed before the handshake ends: whatever happens once the
	// client is connected reaches it.
	evs := s.st.Subscribe(ctx)
	conn, err := websocket.Accept(c.Response(), c.Request(), nil)
	if err != nil {
		return nil // Accept has answered
	}
	defer conn.CloseNow()
	ctx = conn.CloseRead(ctx) // the client sends nothing; this ends ctx when it goes
	send := func(f frame) error {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctx, writeTimeout)
		defer wcancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	for ctx.Err() == nil {
		if err := s.pump(ctx, c, evs, send); err != nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		if _, err := s.st.Count(ctx, store.Query{}); err != nil {
			break // the store is closing
		}
		// Cut off for falling behind: tell the client to reload, then
		// follow again.
		if err := send(frame{Type: "prune"}); err != nil {
			return nil
		}
		evs = s.st.Subscribe(ctx)
	}
	conn.Close(websocket.StatusGoingAway, "")
	return nil
}

// pump turns store events into frames until evs closes; a burst ends with
// a stats frame.
func (s *Server) pump(ctx context.Context, c echo.Context, evs <-chan store.Event, send func(frame) error) error {
	changed := false
	var last updateJSON // copies of one message change together: one update
	for {
		var ev store.Event
		var ok bool
		select {
		case ev, ok = <-evs:
		default:
			if changed {
				st, err := s.stats(c)
				if err == nil {
					if err := send(frame{Type: "stats", Data: st}); err != nil {
						return err
					}
				}
				changed = false
			}
			select {
			case ev, ok = <-evs:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			return nil
		}
		f, err := s.frameFor(ctx, ev)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // gone already: its delete frame follows
			}
			return err
		}
		if f == nil {
			continue
		}
		if u, ok := f.Data.(updateJSON); ok {
			if u == last {
				continue
			}
			last = u
		} else {
			last = updateJSON{}
		}
		changed = true
		if err := send(*f); err != nil {
			return err
		}
	}
}

// frameFor maps one store event to a frame; nil for events the
// message-level view does not show (one copy of several moved, folders).
func (s *Server) frameFor(ctx context.Context, ev store.Event) (*frame, error) {
	switch ev.Kind {
	case store.EventMessage:
		m, err := s.st.Get(ctx, ev.MessageID)
		if err != nil {
			return nil, err
		}
		return &frame{Type: "new", Data: toSummary(m)}, nil
	case store.EventFlags:
		if ev.MessageID == "" {
			return nil, nil
		}
		m, err := s.st.Get(ctx, ev.MessageID)
		if err != nil {
			return nil, err
		}
		return &frame{Type: "update", Data: updateJSON{ID: m.ID, Read: m.Seen}}, nil
	case store.EventTags:
		if ev.MessageID == "" {
			return &frame{Type: "prune"}, nil // many changed: reload
		}
		m, err := s.st.Get(ctx, ev.MessageID)
		if err != nil {
			return nil, err
		}
		return &frame{Type: "update", Data: tagsUpdateJSON{ID: m.ID, Tags: nonNilTags(m.Tags)}}, nil
	case store.EventDeleted:
		switch {
		case ev.MessageID != "":
			// Only when the last copy went does the message go.
			if _, err := s.st.Get(ctx, ev.MessageID); !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return &frame{Type: "delete", Data: deleteJSON{ID: ev.MessageID}}, nil
		case ev.Mailbox == "":
			// Many messages went at once: all of them, or a prune.
			n, err := s.st.Count(ctx, store.Query{})
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return &frame{Type: "truncate"}, nil
			}
			return &frame{Type: "prune"}, nil
		}
	}
	return nil, nil
}
