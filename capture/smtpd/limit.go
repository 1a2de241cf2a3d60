package smtpd

import (
	"net"

	"github.com/mailsandbox/mailsandbox/capture/connlimit"
)

// newLimiter caps concurrent connections, in total and per client IP, for
// every listener the server serves. A connection over a cap is told why
// (421) and closed at once, so that a flood costs no session goroutine.
func (s *Server) newLimiter() *connlimit.Limiter {
	return connlimit.New(connlimit.Options{
		MaxConnections:      s.opts.MaxConnections,
		MaxConnectionsPerIP: s.opts.MaxConnectionsPerIP,
		Refusal:             connlimit.SMTP(s.opts.Domain),
		TLSConfig:           s.opts.TLSConfig,
		OnRefuse: func(net.Addr, bool) {
			s.metrics.rejections.WithLabelValues("421").Inc()
		},
	})
}
