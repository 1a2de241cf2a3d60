package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// GET /events: Server-Sent Events.
//
//	event: message   data: the new message's summary
//	event: deleted   data: {"id","mailboxes"} (mailboxes the copies left; id "" and no mailboxes: all mail)
//	event: flags     data: {"id","mailbox","uids"} (flags changed, or entries were added to a folder; id may be "")
//	event: relay     data: {"id","message_id"} (the delivery that changed; id "" when several were queued at ingest)
//
// A comment line is sent every 15 seconds to keep proxies from closing the
// stream. When the server cannot keep up with the store (the subscription
// is cut), it sends "event: reset" so clients re-read what they show, and
// continues.
func (s *Server) events(c echo.Context) error {
	ctx := c.Request().Context()
	w := c.Response()
	LiftWriteDeadline(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.metrics.sseClients.Inc()
	defer s.metrics.sseClients.Dec()

	events := s.st.Subscribe(ctx)
	if _, err := fmt.Fprint(w, ": mailsandbox events\nretry: 2000\n\n"); err != nil {
		return nil
	}
	w.Flush()
	beat := time.NewTicker(heartbeatInterval)
	defer beat.Stop()
	var seq int64
	send := func(kind string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		seq++
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, kind, b); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// Cut off for falling behind: start again and tell the client.
				events = s.st.Subscribe(ctx)
				if send("reset", map[string]string{}) != nil {
					return nil
				}
				continue
			}
			kind, data := s.eventData(c, ev)
			if kind == "" {
				continue
			}
			if send(kind, data) != nil {
				return nil
			}
		}
	}
}

// eventData turns a store event into an SSE event name and payload; kind ""
// means the event is not shown.
func (s *Server) eventData(c echo.Context, ev store.Event) (string, any) {
	switch ev.Kind {
	case store.EventMessage:
		m, err := s.st.Get(c.Request().Context(), ev.MessageID)
		if err != nil {
			// Deleted already: still say it came.
			return "message", map[string]any{"id": ev.MessageID, "mailboxes": nonNilStrings(ev.Mailboxes)}
		}
		return "message", toSummary(m)
	case store.EventDeleted:
		if ev.MessageID == "" && ev.Mailbox != "" {
			return "", nil // the per-folder twin (for IMAP) of a per-message event
		}
		return "deleted", map[string]any{"id": ev.MessageID, "mailboxes": nonNilStrings(ev.Mailboxes)}
	case store.EventFlags:
		uids := ev.UIDs
		if uids == nil {
			uids = []uint32{}
		}
		return "flags", map[string]any{"id": ev.MessageID, "mailbox": ev.Mailbox, "uids": uids}
	case store.EventTags:
		tags := []string{}
		if ev.MessageID != "" {
			if m, err := s.st.Get(c.Request().Context(), ev.MessageID); err == nil {
				tags = m.Tags
			}
		}
		return "tags", map[string]any{"id": ev.MessageID, "tags": tags}
	case store.EventRelay:
		d := ""
		if ev.DeliveryID != 0 {
			d = strconv.FormatInt(ev.DeliveryID, 10)
		}
		return "relay", map[string]any{"id": d, "message_id": ev.MessageID}
	}
	return "", nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
