//go:build unix

package sendmail_test

import (
	"fmt"
	"syscall"
	"testing"
)

// downAddr is a loopback address nothing listens on, for the test's whole
// life: a socket bound to it but never listening refuses connections, and
// holds the port (without SO_REUSEADDR), so no other test, nor a Docker
// port published on the wildcard address, can take it meanwhile. (A port
// found free and closed again was taken once by a parallel package: the
// "unreachable" sandbox answered, then hung up.)
func downAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
