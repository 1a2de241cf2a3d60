package ui_test

import (
	"context"
	"net"
	"testing"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// startSandbox starts the whole sandbox in-process on free loopback ports,
// with a temporary store, and stops it with the test. The relay routes
// real.example to a loopback server that always answers 421, so released
// mail stays queued with attempts and a last error to show.
func startSandbox(t *testing.T) env {
	t.Helper()
	sb := startFullSandbox(t)
	return env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
}

func startFullSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{
		SMTPAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		POP3Addr: "127.0.0.1:0",
		IMAPAddr: "127.0.0.1:0",
		Relay: sandbox.RelayConfig{
			Routes: map[string]string{"real.example": busySMTP(t)},
		},
	})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Logf("close sandbox: %v", err)
		}
	})
	return sb
}

// busySMTP listens on loopback and greets every connection with a temporary
// failure, like a mail server under load.
func busySMTP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("421 4.3.2 busy.real.example: too busy, try again later\r\n"))
			c.Close()
		}
	}()
	return l.Addr().String()
}
