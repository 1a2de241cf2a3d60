//go:build !unix

package sendmail_test

import (
	"net"
	"testing"
)

// downAddr is a loopback address nothing listens on (a port found free;
// on unix the port is also held, see downaddr_unix_test.go).
func downAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
