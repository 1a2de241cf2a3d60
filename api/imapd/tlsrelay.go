package imapd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
)

// TLS and the library's SERVERBUG answer (see replyfilter.go): the library
// tells a TLS connection only by its type, *tls.Conn, so nothing may wrap
// one it is given, and on STARTTLS it puts its own tls.Conn on top of the
// connection; either way the plaintext it writes never passes through
// anything of ours. So the library's TLS is kept in-process: the client's
// TLS session (with the configured certificate) ends in a relay, which
// rewrites what the library writes and passes it on, and the library's
// *tls.Conn talks to the relay over an in-memory pipe with a certificate
// made for this server alone. The library keeps every TLS rule of its own
// (STARTTLS offered only before TLS, LOGINDISABLED and AUTH= by
// connection); the cost is a second, in-memory encryption of TLS traffic.

// innerTLS is the pipe's TLS: the library's server side and the relay's
// client side, which trusts this one certificate.
type innerTLS struct {
	server *tls.Config
	client *tls.Config
}

const innerName = "imapd.relay.invalid"

func newInnerTLS() (*innerTLS, error) {
	cert, err := tlscert.SelfSigned(innerName)
	if err != nil {
		return nil, fmt.Errorf("imap relay certificate: %w", err)
	}
	return &innerTLS{
		server: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		client: &tls.Config{RootCAs: tlscert.Pool(cert), ServerName: innerName, MinVersion: tls.VersionTLS13},
	}, nil
}

// pipeConn is the library's end of the pipe, with the client's addresses.
type pipeConn struct {
	net.Conn
	local, remote net.Addr
}

func (c pipeConn) LocalAddr() net.Addr  { return c.local }
func (c pipeConn) RemoteAddr() net.Addr { return c.remote }

// relayWriteTimeout bounds one write to the client (a client that stops
// reading); the library's own deadlines stop at the pipe.
const relayWriteTimeout = 5 * time.Minute

// startRelay joins outer (the client's TLS connection, or the raw one to
// be handshaken) to a new pipe and returns the library's end of it, in
// plaintext; the caller puts the library's tls.Conn with inner.server on
// it. The relay ends, closing outer, when either side closes.
func startRelay(outer net.Conn, inner *innerTLS, routes routeMark) net.Conn {
	libEnd, relayEnd := net.Pipe()
	ic := tls.Client(relayEnd, inner.client)
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			_ = ic.Close()
			_ = relayEnd.Close()
			_ = outer.Close()
		})
	}
	// Client to library.
	go func() {
		defer closeAll()
		_, _ = io.Copy(ic, outer)
	}()
	// Library to client, rewritten: whole lines (see lineCut).
	go func() {
		defer closeAll()
		buf := make([]byte, 32<<10)
		var pending []byte
		for {
			n, err := ic.Read(buf)
			if n > 0 {
				pending = append(pending, buf[:n]...)
				cut := lineCut(pending)
				if cut > 0 {
					_ = outer.SetWriteDeadline(time.Now().Add(relayWriteTimeout))
					if _, werr := outer.Write(rewriteReplies(pending[:cut], routes)); werr != nil {
						return
					}
					pending = append(pending[:0], pending[cut:]...)
				}
			}
			if err != nil {
				if len(pending) > 0 && !errors.Is(err, net.ErrClosed) {
					_ = outer.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = outer.Write(rewriteReplies(pending, routes))
				}
				return
			}
		}
	}()
	return pipeConn{Conn: libEnd, local: outer.LocalAddr(), remote: outer.RemoteAddr()}
}
