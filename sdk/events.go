package sdk

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Event is one Server-Sent Event from GET /events: Type is "message",
// "deleted" or "relay", and Data its JSON payload.
type Event struct {
	Type string
	ID   string
	Data json.RawMessage
}

// Decode unmarshals the event's data into v (for a "message" event, a
// [Summary]).
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("sdk: decode %s event: %w", e.Type, err)
	}
	return nil
}

// EventStream reads events from an open GET /events connection.
type EventStream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// Events opens the Server-Sent Events stream. Read it with
// [EventStream.Next]; it ends when ctx ends or [EventStream.Close] is called.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/events", context: "open event stream"})
	if err != nil {
		return nil, err
	}
	return &EventStream{body: resp.Body, r: bufio.NewReader(resp.Body)}, nil
}

// Next blocks until the next event and returns it. At the end of the stream
// it returns io.EOF; when the context passed to Events ends, its error.
func (s *EventStream) Next() (Event, error) {
	var ev Event
	var data strings.Builder
	hasData := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" {
				return Event{}, io.EOF
			}
			if err != io.EOF {
				return Event{}, fmt.Errorf("sdk: read event stream: %w", err)
			}
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if hasData || ev.Type != "" {
				if ev.Type == "" {
					ev.Type = "message"
				}
				ev.Data = json.RawMessage(data.String())
				return ev, nil
			}
			if err == io.EOF {
				return Event{}, io.EOF
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment / keep-alive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Type = value
		case "id":
			ev.ID = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		}
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
