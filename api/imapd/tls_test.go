package imapd_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/tlscert"
)

// TestNoServerBugOnAnyConnection: a mailbox name that is not valid
// modified UTF-7 gets a plain NO on a plain connection, after STARTTLS and
// over implicit TLS alike, never SERVERBUG. The TLS clients verify the
// configured certificate (the library's own TLS runs behind a relay with
// another one, which no client may see); a large message and LOGOUT's
// last lines come through whole.
func TestNoServerBugOnAnyConnection(t *testing.T) {
	t.Parallel()
	cfg, pool := tlscert.ForTest(t)
	ts := newTestServer(t, func(o *imapd.Options) {
		o.TLSConfig = cfg
		o.Auth = fixedAuth{"bob@example.com": "pw"}
		o.AllowInsecureAuth = true
	})
	big := strings.Repeat("0123456789abcdef fill line of a large message\r\n", 4000) // ~190 KB
	raw := textMsg("big", big)
	ts.ingest(t, "bob@example.com", raw)
	_, text, _ := strings.Cut(raw, "\r\n\r\n")
	// A source route, put in place on the way out (routes.go).
	ts.ingest(t, "bob@example.com", "From: \"A \\\"B\\\"\" <@r1.test,@r2.test:u@h.test>\r\nSubject: routed\r\n\r\nx\r\n")
	const routed = `(("A \"B\"" "@r1.test,@r2.test" "u" "h.test"))`
	client := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.Serve(tls.NewListener(ln, cfg))

	conns := map[string]func(t *testing.T) *rawClient{
		"plain": func(t *testing.T) *rawClient { return dial(t, ts.addr) },
		"starttls": func(t *testing.T) *rawClient {
			c := dial(t, ts.addr)
			c.ok("STARTTLS")
			tc := tls.Client(c.conn, client)
			if err := tc.Handshake(); err != nil {
				t.Fatalf("STARTTLS handshake: %v", err)
			}
			c.conn, c.r = tc, bufio.NewReader(tc)
			return c
		},
		"implicit": func(t *testing.T) *rawClient {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), client)
			if err != nil {
				t.Fatalf("implicit TLS: %v", err)
			}
			t.Cleanup(func() { conn.Close() })
			c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
			if g := c.line(); !strings.HasPrefix(g, "* OK") {
				t.Fatalf("greeting %q", g)
			}
			return c
		},
	}
	for _, kind := range []string{"plain", "starttls", "implicit"} {
		t.Run(kind, func(t *testing.T) {
			c := conns[kind](t)
			caps := c.ok("CAPABILITY")
			if strings.Contains(caps[0], "STARTTLS") == (kind != "plain") {
				t.Errorf("capabilities %q", caps)
			}
			c.ok("LOGIN bob@example.com pw")
			for _, cmd := range []string{`SELECT "&ZZZ"`, `CREATE "&Jjo"`, `SUBSCRIBE "&ZZZ"`, `STATUS "&ZZZ" (MESSAGES)`,
				`RENAME INBOX "&Jjo"`, `DELETE "&Jjo"`, `LIST "" "&Jjo"`, `EXAMINE "&"`} {
				if _, st := c.do("%s", cmd); strings.Contains(st, "SERVERBUG") || !(strings.HasPrefix(st, "NO") || strings.HasPrefix(st, "BAD")) {
					t.Errorf("%s: %s", cmd, st)
				}
			}
			if _, st := c.do(`SELECT "&ZZZ"`); st != "NO Mailbox name is not valid mUTF-7" {
				t.Errorf("select: %q", st)
			}
			c.send(`ap APPEND "&Jjo" {1}`)
			if l := c.line(); l != "ap NO Mailbox name is not valid mUTF-7" {
				t.Errorf("append: %q", l)
			}
			c.ok("SELECT INBOX")
			u := c.ok("FETCH 1 (BODY.PEEK[TEXT])")
			if want := fmt.Sprintf("* 1 FETCH (BODY[TEXT] {%d}%s)", len(text), text); len(u) != 1 || u[0] != want {
				t.Errorf("large fetch: %d lines, %d bytes, want %d", len(u), len(strings.Join(u, "")), len(want))
			}
			if u := c.ok("FETCH 2 (ENVELOPE)"); len(u) != 1 || !strings.Contains(u[0], `(NIL "routed" `+routed+" "+routed+" "+routed+" NIL") {
				t.Errorf("envelope %q", u)
			}
			c.send("z LOGOUT")
			if l := c.line(); !strings.HasPrefix(l, "* BYE") {
				t.Errorf("logout: %q", l)
			}
			if l := c.line(); !strings.HasPrefix(l, "z OK") {
				t.Errorf("logout: %q", l)
			}
		})
	}
}

// TestStartTLSInjection: commands sent in plaintext right after STARTTLS
// (before the handshake) are never run, neither as plaintext nor inside
// the TLS session.
func TestStartTLSInjection(t *testing.T) {
	t.Parallel()
	cfg, pool := tlscert.ForTest(t)
	ts := newTestServer(t, func(o *imapd.Options) { o.TLSConfig = cfg })
	c := dial(t, ts.addr)
	if _, err := c.conn.Write([]byte("a STARTTLS\r\nb NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return // refused: fine
	}
	r := bufio.NewReader(tc)
	for {
		l, err := r.ReadString('\n')
		if strings.HasPrefix(l, "b ") {
			t.Fatalf("injected command answered: %q", l)
		}
		if err != nil {
			return // the connection ends without running it
		}
	}
}
