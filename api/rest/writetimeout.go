package rest

import (
	"net/http"
	"time"
)

// DefaultWriteTimeout bounds writing one response (Options.WriteTimeout).
const DefaultWriteTimeout = 60 * time.Second

// setWriteDeadline gives the response Options.WriteTimeout from now, so a
// client that stops reading cannot hold a handler and its connection
// forever. http.Server.WriteTimeout cannot do this: it would cut the event
// stream and long waits too, which lift the deadline (LiftWriteDeadline).
// Set on every request, it also replaces the deadline an earlier request
// left on a kept-alive connection.
func (s *Server) setWriteDeadline(w http.ResponseWriter) {
	var at time.Time
	if s.opts.WriteTimeout > 0 {
		at = time.Now().Add(s.opts.WriteTimeout)
	}
	_ = http.NewResponseController(w).SetWriteDeadline(at) // a writer without deadlines (tests' recorders) has none to set
}

// LiftWriteDeadline lets a streaming handler (GET /events, GET
// /messages/wait, or a Mount's stream) write for as long as it needs; its
// own ends (client gone, shutdown, timeout) bound it instead. w may be
// echo's c.Response().
func LiftWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}
