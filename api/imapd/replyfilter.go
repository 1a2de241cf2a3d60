package imapd

import (
	"bytes"
	"crypto/tls"
	"net"
)

// The library answers a command it could not decode for a reason other
// than syntax with "NO [SERVERBUG] Internal server error". The one such
// reason a client can cause is a mailbox name that is not valid modified
// UTF-7 (RFC 3501 5.1.3) or not UTF-8: the name is decoded before any
// session method runs, so the session cannot answer it. replyConn rewrites
// that answer on its way out into what Dovecot answers. (Our own failures
// say "internal error" after what failed, so they pass unchanged.) Over
// TLS the library's answer stays as it is: it tells a TLS connection by
// its type (implicit TLS), or wraps this one in TLS itself (STARTTLS).

var (
	libServerBug  = []byte(" NO [SERVERBUG] Internal server error\r\n")
	badMailboxMsg = []byte(" NO Mailbox name is not valid mUTF-7\r\n")
)

type replyConn struct{ net.Conn }

func (c replyConn) Write(p []byte) (int, error) {
	if !bytes.Contains(p, libServerBug) {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(bytes.ReplaceAll(p, libServerBug, badMailboxMsg)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// replyListener wraps every accepted connection in a replyConn.
type replyListener struct{ net.Listener }

func (l replyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, isTLS := c.(*tls.Conn); isTLS {
		return c, nil // the library tells TLS by the type; keep it visible
	}
	return replyConn{c}, nil
}
