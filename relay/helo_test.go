package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// recorder is a destination that writes down every command it reads, in
// clear and inside TLS, and answers like a small MTA offering STARTTLS.
type recorder struct {
	addr string
	mu   sync.Mutex
	cmds []string
	done chan struct{}
}

func newRecorder(t *testing.T, tlsConfig *tls.Config) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{addr: ln.Addr().String(), done: make(chan struct{}, 10)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c, tlsConfig)
		}
	}()
	return r
}

func (r *recorder) serve(c net.Conn, tlsConfig *tls.Config) {
	defer c.Close()
	br := bufio.NewReader(c)
	var w net.Conn = c
	say := func(s string) { w.Write([]byte(s + "\r\n")) }
	say("220 rec.test ESMTP")
	inTLS, inData := false, false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if inData {
			if line == "." {
				inData = false
				say("250 2.0.0 Ok: queued")
			}
			continue
		}
		r.mu.Lock()
		r.cmds = append(r.cmds, line)
		r.mu.Unlock()
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			if inTLS {
				say("250-rec.test\r\n250 8BITMIME")
			} else {
				say("250-rec.test\r\n250-8BITMIME\r\n250 STARTTLS")
			}
		case "STARTTLS":
			say("220 2.0.0 Ready to start TLS")
			tc := tls.Server(c, tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			w, br, inTLS = tc, bufio.NewReader(tc), true
		case "DATA":
			inData = true
			say("354 End data with <CR><LF>.<CR><LF>")
		case "QUIT":
			say("221 2.0.0 Bye")
			r.done <- struct{}{}
			return
		default:
			say("250 2.0.0 Ok")
		}
	}
}

func (r *recorder) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.cmds...)
}

// greetings returns the recorded EHLO/HELO/STARTTLS commands in order.
func greetings(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		u := strings.ToUpper(c)
		if strings.HasPrefix(u, "EHLO") || strings.HasPrefix(u, "HELO") || strings.HasPrefix(u, "STARTTLS") {
			out = append(out, c)
		}
	}
	return out
}

// TestGreetingOnceEachSideOfSTARTTLS: towards a destination that offers
// STARTTLS the relay says EHLO with its name, STARTTLS, EHLO with the
// same name, and never go-smtp's own "EHLO localhost".
func TestGreetingOnceEachSideOfSTARTTLS(t *testing.T) {
	t.Parallel()
	srvTLS, _ := testCert(t)
	for _, tc := range []struct {
		name, helo string
		hostname   string
		want       string
	}{
		{"configured", "mta.example.org", "", "mta.example.org"},
		{"bare host name falls back to the address literal", "", "vm", "[127.0.0.1]"},
		{"fqdn host name", "", "box.example.net", "box.example.net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, srvTLS)
			o := Options{Routes: map[string]string{"r.test": rec.addr}, Match: []string{"*@r.test"}}
			o = testOptions(o)
			o.HeloName = tc.helo
			o.Hostname = func() (string, error) { return tc.hostname, nil }
			// Only box.example.net resolves, as a name in DNS would.
			o.LookupHost = func(_ context.Context, h string) ([]string, error) {
				switch h {
				case "box.example.net":
					return []string{"192.0.2.7"}, nil
				case "vm":
					return []string{"127.0.0.1"}, nil
				}
				return nil, errors.New("no such host")
			}
			o.LookupAddr = func(context.Context, string) ([]string, error) { return []string{"localhost", "vm"}, nil }
			tq := newTestQueueRaw(t, o)
			tq.ingest(t, "a@sender.test", []string{"b@r.test"}, mail("a@sender.test", "b@r.test", "greet", "x"))
			waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
			want := []string{"EHLO " + tc.want, "STARTTLS", "EHLO " + tc.want}
			if got := greetings(rec.commands()); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("greetings %q, want %q (all: %q)", got, want, rec.commands())
			}
		})
	}
}

// newTestQueueRaw is newTestQueue without testOptions' HeloName default.
func newTestQueueRaw(t *testing.T, o Options) *testQueue {
	t.Helper()
	tq := &testQueue{path: sqliteDSN(t)}
	var qp *Queue
	tq.st = openStore(t, tq.path, &qp)
	q, err := New(tq.st, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	qp, tq.q = q, q
	q.Start()
	t.Cleanup(func() { q.Close() })
	return tq
}

func TestFQDN(t *testing.T) {
	hosts := map[string][]string{"vm": {"127.0.1.1"}, "vm.example.org": {"127.0.1.1"}, "a.b": {"192.0.2.1"}}
	o := Options{
		LookupHost: func(_ context.Context, h string) ([]string, error) {
			if a, ok := hosts[h]; ok {
				return a, nil
			}
			return nil, errors.New("no such host")
		},
		LookupAddr: func(_ context.Context, a string) ([]string, error) {
			return []string{"localhost.localdomain", "vm.example.org.", "vm"}, nil
		},
	}
	for host, want := range map[string]string{
		"a.b":         "a.b",            // dotted and resolves
		"vm":          "vm.example.org", // Debian's 127.0.1.1 line
		"x.invalid":   "",               // dotted, resolves nowhere
		"":            "",
		"localhost.x": "",
	} {
		o.Hostname = func() (string, error) { return host, nil }
		if got := fqdn(context.Background(), o); got != want {
			t.Errorf("fqdn(%q) = %q, want %q", host, got, want)
		}
	}
	for name, ok := range map[string]bool{"mta.example.org": true, "[192.0.2.1]": true, "a b": false, "x\r\n": false, "": true, "[]": false} {
		if name == "" {
			continue
		}
		if validHelo(name) != ok {
			t.Errorf("validHelo(%q) = %v", name, !ok)
		}
	}
}
