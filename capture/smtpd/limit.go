package smtpd

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// limitListener caps concurrent connections, in total and per client IP.
// A connection over a cap is told why (421) and closed at once, so that a
// flood costs no session goroutine.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		s := l.s
		s.mu.Lock()
		over := s.conns >= s.opts.MaxConnections || s.perIP[ip] >= s.opts.MaxConnectionsPerIP
		if !over {
			s.conns++
			s.perIP[ip]++
		}
		s.mu.Unlock()
		if over {
			s.metrics.rejections.WithLabelValues("421").Inc()
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(c, "421 4.7.0 %s Too many connections, try again later\r\n", s.opts.Domain)
				c.Close()
			}()
			continue
		}
		return &countedConn{Conn: c, release: func() {
			s.mu.Lock()
			s.conns--
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}}, nil
	}
}

func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
