package pop3d_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/pop3d"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

const (
	msgFirst = "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: first\r\n\r\nHello Bob\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n"
	msgBoth  = "From: alice@example.com\r\nTo: bob@example.com, carol@example.com\r\nSubject: both\r\n\r\nTo you both\r\n"
	msgCarol = "From: alice@example.com\r\nTo: carol@example.com\r\nSubject: carol only\r\n\r\nSecret for Carol\r\n"
)

// stuffed is msg as RETR sends it, without the terminating line.
func stuffed(msg string) []string {
	lines := strings.Split(strings.TrimSuffix(msg, "\r\n"), "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			lines[i] = "." + l
		}
	}
	return lines
}

func TestLoginAndRead(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgBoth, "bob@example.com", "carol@example.com")
	ts.ingest(msgCarol, "carol@example.com")

	c := ts.dial()
	if got := c.login("Bob@Example.COM"); got != "+OK bob@example.com has 2 messages" {
		t.Fatalf("login: %q", got)
	}
	total := len(msgFirst) + len(msgBoth)
	if got, want := c.cmd("STAT"), fmt.Sprintf("+OK 2 %d", total); got != want {
		t.Fatalf("STAT = %q, want %q", got, want)
	}
	if got, want := c.multi("LIST"), []string{fmt.Sprintf("1 %d", len(msgFirst)), fmt.Sprintf("2 %d", len(msgBoth))}; !equal(got, want) {
		t.Fatalf("LIST = %q, want %q", got, want)
	}
	if got, want := c.cmd("LIST 2"), fmt.Sprintf("+OK 2 %d", len(msgBoth)); got != want {
		t.Fatalf("LIST 2 = %q", got)
	}
	c.fail("LIST 3")

	uidls := c.multi("UIDL")
	re := regexp.MustCompile(`^([12]) ([\x21-\x7e]{1,70})$`)
	if len(uidls) != 2 || !re.MatchString(uidls[0]) || !re.MatchString(uidls[1]) {
		t.Fatalf("UIDL = %q", uidls)
	}
	u1, u2 := strings.Fields(uidls[0])[1], strings.Fields(uidls[1])[1]
	if u1 == u2 {
		t.Fatalf("UIDL not unique: %q", uidls)
	}
	if got := c.cmd("UIDL 1"); got != "+OK 1 "+u1 {
		t.Fatalf("UIDL 1 = %q", got)
	}

	if got, want := c.cmd("RETR 1"), fmt.Sprintf("+OK %d octets", len(msgFirst)); got != want {
		t.Fatalf("RETR 1 = %q, want %q", got, want)
	}
	if got := c.lines(); !equal(got, stuffed(msgFirst)) {
		t.Fatalf("RETR 1 body = %q", got)
	}
	if got, want := c.multi("TOP 1 0"), stuffed(msgFirst)[:4]; !equal(got, want) {
		t.Fatalf("TOP 1 0 = %q, want %q", got, want)
	}
	if got, want := c.multi("TOP 1 2"), stuffed(msgFirst)[:6]; !equal(got, want) {
		t.Fatalf("TOP 1 2 = %q, want %q", got, want)
	}
	if got, want := c.multi("TOP 2 100"), stuffed(msgBoth); !equal(got, want) {
		t.Fatalf("TOP 2 100 = %q, want %q", got, want)
	}
	c.ok("NOOP")
	c.ok("QUIT")
	c.expectClosed()
	if n := len(ts.inbox("bob@example.com")); n != 2 {
		t.Fatalf("bob has %d messages after a read-only session", n)
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n") && len(a) == len(b)
}

func TestSizesMatchWhatRETRSends(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	odd := []string{
		"Subject: bare LF\n\nline one\n.dot\nno final newline",
		"Subject: mixed\r\n\nCRLF then LF\nbare\rCR\r\n",
		"",
		"no header at all",
	}
	for _, m := range odd {
		ts.ingest(m, "bob@example.com")
	}
	c := ts.dial()
	c.login("bob@example.com")
	list := c.multi("LIST")
	if len(list) != len(odd) {
		t.Fatalf("LIST = %q", list)
	}
	var total int
	for i := range odd {
		var n, size int
		fmt.Sscanf(list[i], "%d %d", &n, &size)
		total += size
		c.ok(fmt.Sprintf("RETR %d", i+1))
		sent := 0
		for _, l := range c.lines() {
			l = strings.TrimPrefix(l, ".") // byte-stuffing is not counted
			sent += len(l) + 2
		}
		if sent != size {
			t.Errorf("message %d: LIST says %d octets, RETR sent %d", i+1, size, sent)
		}
	}
	if got, want := c.cmd("STAT"), fmt.Sprintf("+OK %d %d", len(odd), total); got != want {
		t.Fatalf("STAT = %q, want %q", got, want)
	}
}

func TestDeleQuitRemovesOnlyThatMailboxCopy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	id := ts.ingest(msgBoth, "bob@example.com", "carol@example.com")
	ts.ingest(msgFirst, "bob@example.com")

	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	c.fail("DELE 1")
	c.fail("RETR 1")
	c.fail("TOP 1 0")
	c.fail("LIST 1")
	c.fail("UIDL 1")
	if got, want := c.cmd("STAT"), fmt.Sprintf("+OK 1 %d", len(msgFirst)); got != want {
		t.Fatalf("STAT after DELE = %q, want %q", got, want)
	}
	if got := c.multi("LIST"); len(got) != 1 || !strings.HasPrefix(got[0], "2 ") {
		t.Fatalf("LIST after DELE = %q", got)
	}
	if got := c.ok("QUIT"); !strings.Contains(got, "1 messages left") {
		t.Fatalf("QUIT = %q", got)
	}
	c.expectClosed()

	bob := ts.inbox("bob@example.com")
	if len(bob) != 1 || bob[0].MessageID == id {
		t.Fatalf("bob's inbox after DELE+QUIT: %+v", bob)
	}
	carol := ts.inbox("carol@example.com")
	if len(carol) != 1 || carol[0].MessageID != id {
		t.Fatalf("carol's copy is gone: %+v", carol)
	}
	if _, err := ts.st.Raw(context.Background(), id); err != nil {
		t.Fatalf("message gone for carol: %v", err)
	}
	msgs, _, err := ts.st.Search(context.Background(), store.Query{Mailbox: "bob@example.com"})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("search bob: %d messages, %v", len(msgs), err)
	}

	// The next session sees the rest, renumbered from 1.
	c = ts.dial()
	if got := c.login("bob@example.com"); got != "+OK bob@example.com has 1 messages" {
		t.Fatalf("login: %q", got)
	}
}

func TestDeleRsetQuitKeeps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgBoth, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	c.ok("DELE 2")
	if got := c.cmd("STAT"); got != "+OK 0 0" {
		t.Fatalf("STAT = %q", got)
	}
	if got, want := c.cmd("RSET"), fmt.Sprintf("+OK maildrop has 2 messages (%d octets)", len(msgFirst)+len(msgBoth)); got != want {
		t.Fatalf("RSET = %q, want %q", got, want)
	}
	c.ok("RETR 1")
	c.lines()
	c.ok("QUIT")
	c.expectClosed()
	if n := len(ts.inbox("bob@example.com")); n != 2 {
		t.Fatalf("bob has %d messages, want 2", n)
	}
}

func TestDeleThenDroppedConnectionKeeps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	c.hangUp() // returns once the server ended the session
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d messages after a dropped session, want 1", n)
	}
	// The lock was released: a new session logs in and sees the message.
	c = ts.dial()
	if got := c.login("bob@example.com"); got != "+OK bob@example.com has 1 messages" {
		t.Fatalf("login after drop: %q", got)
	}
}

func TestIdleTimeoutDeletesNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.IdleTimeout = 100 * time.Millisecond })
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	// RFC 1939: on autologout, close without a response.
	if got := c.expectClosed(); got != "" {
		t.Fatalf("timeout reply %q", got)
	}
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d messages after a timed out session, want 1", n)
	}
}

func TestUIDLStableAcrossSessionsAndRestarts(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgBoth, "bob@example.com")
	uidl := func() []string {
		c := ts.dial()
		c.login("bob@example.com")
		defer func() { c.ok("QUIT"); c.expectClosed() }()
		var ids []string
		for _, l := range c.multi("UIDL") {
			ids = append(ids, strings.Fields(l)[1])
		}
		return ids
	}
	first := uidl()
	if again := uidl(); !equal(again, first) {
		t.Fatalf("UIDL changed between sessions: %q then %q", first, again)
	}

	// Deleting the first message keeps the second one's UIDL.
	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	c.ok("QUIT")
	c.expectClosed()
	ts.ingest(msgCarol, "bob@example.com")
	after := uidl()
	if len(after) != 2 || after[0] != first[1] || after[1] == first[0] {
		t.Fatalf("UIDL after delete and new mail: %q (before %q)", after, first)
	}

	// A restart (store closed and opened again) keeps them too.
	ts.srv.Close()
	ts.st.Close()
	ts.st = openStore(t, ts.dsn)
	ts.start(ts.st, nil)
	if restarted := uidl(); !equal(restarted, after) {
		t.Fatalf("UIDL changed across restart: %q then %q", after, restarted)
	}
}

func TestNewMailHiddenUntilNextLogin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	ts.ingest(msgBoth, "bob@example.com")
	if got := c.cmd("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("STAT during session = %q", got)
	}
	c.fail("RETR 2")
	if got := c.multi("UIDL"); len(got) != 1 {
		t.Fatalf("UIDL = %q", got)
	}
	c.ok("QUIT")
	c.expectClosed()
	c = ts.dial()
	if got := c.login("bob@example.com"); got != "+OK bob@example.com has 2 messages" {
		t.Fatalf("next login: %q", got)
	}
}

func TestOtherMailboxesNeverVisible(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgCarol, "carol@example.com")
	ts.ingest(msgCarol, "bob+tag@example.com")

	c := ts.dial()
	c.login("bob@example.com")
	if got := c.multi("LIST"); len(got) != 1 {
		t.Fatalf("bob sees %q", got)
	}
	c.ok("RETR 1")
	if got := strings.Join(c.lines(), "\n"); strings.Contains(got, "Carol") {
		t.Fatalf("bob read carol's mail: %q", got)
	}
	c.fail("RETR 2")

	// A mailbox that never received mail logs in empty and is not created.
	c2 := ts.dial()
	if got := c2.login("nobody@example.com"); got != "+OK nobody@example.com has 0 messages" {
		t.Fatalf("login nobody: %q", got)
	}
	if got := c2.cmd("STAT"); got != "+OK 0 0" {
		t.Fatalf("STAT = %q", got)
	}
	if got := c2.multi("LIST"); len(got) != 0 {
		t.Fatalf("LIST = %q", got)
	}
	c2.fail("RETR 1")
	c2.ok("QUIT")
	mbs, err := ts.st.Mailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range mbs {
		if mb.Address == "nobody@example.com" {
			t.Fatalf("POP3 login created a mailbox: %+v", mbs)
		}
	}
}

func TestSecondSessionRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	c1 := ts.dial()
	c1.login("bob@example.com")

	c2 := ts.dial()
	c2.ok("USER BOB@example.com")
	if got := c2.cmd("PASS x"); got != "-ERR [IN-USE] maildrop already locked" {
		t.Fatalf("second session: %q", got)
	}
	if got := c2.cmd("AUTH PLAIN " + plain("", "bob@example.com", "x")); got != "-ERR [IN-USE] maildrop already locked" {
		t.Fatalf("second session AUTH: %q", got)
	}
	c2.fail("STAT") // still not logged in
	c2.login("carol@example.com")

	c1.ok("QUIT")
	c1.expectClosed()
	c3 := ts.dial()
	c3.login("bob@example.com")
}

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

func TestAuthPlain(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")

	t.Run("initial response", func(t *testing.T) {
		c := ts.dial()
		if got := c.cmd("AUTH PLAIN " + plain("", "Bob@example.com", "pw")); got != "+OK bob@example.com has 1 messages" {
			t.Fatalf("AUTH = %q", got)
		}
		c.ok("QUIT")
		c.expectClosed()
	})
	t.Run("continuation", func(t *testing.T) {
		c := ts.dial()
		if got := c.cmd("auth plain"); got != "+ " {
			t.Fatalf("AUTH PLAIN = %q, want \"+ \"", got)
		}
		c.ok(plain("bob@example.com", "bob@example.com", "pw"))
		c.ok("STAT")
		c.ok("QUIT")
		c.expectClosed()
	})
	t.Run("cancel and errors", func(t *testing.T) {
		c := ts.dial()
		if got := c.cmd("AUTH PLAIN"); got != "+ " {
			t.Fatalf("AUTH PLAIN = %q", got)
		}
		c.fail("*")
		c.fail("AUTH PLAIN !!!notbase64")
		c.fail("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("no nuls")))
		c.fail("AUTH PLAIN " + plain("", "", "pw"))
		if got := c.cmd("AUTH PLAIN " + plain("", "bob\r\n+OK injected", "pw")); got != "-ERR [AUTH] invalid user name" {
			t.Fatalf("control characters in user name: %q", got)
		}
		c.fail("AUTH PLAIN " + plain("", strings.Repeat("x", 300), "pw"))
		c.fail("AUTH PLAIN " + plain("carol@example.com", "bob@example.com", "pw"))
		c.fail("AUTH CRAM-MD5")
		if got := c.multi("AUTH"); !equal(got, []string{"PLAIN"}) {
			t.Fatalf("AUTH list = %q", got)
		}
		c.login("bob@example.com")
	})
}

func TestCapa(t *testing.T) {
	t.Parallel()
	cfg, _, _ := selfSigned(t)
	ts := newTestServer(t, func(o *pop3d.Options) { o.TLSConfig = cfg })
	c := ts.dial()
	want := []string{"USER", "SASL PLAIN", "STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION mailsandbox"}
	if got := c.multi("CAPA"); !equal(got, want) {
		t.Fatalf("CAPA = %q, want %q", got, want)
	}
	c.login("bob@example.com")
	if got := c.multi("capa"); !equal(got, want[3:]) {
		t.Fatalf("CAPA after login = %q", got)
	}
}

func TestSTLS(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := selfSigned(t)
	ts := newTestServer(t, func(o *pop3d.Options) { o.TLSConfig = cfg })
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.ok("STLS")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c = newClient(t, tc)
	if got := c.multi("CAPA"); strings.Contains(strings.Join(got, " "), "STLS") {
		t.Fatalf("CAPA after STLS offers STLS: %q", got)
	}
	c.fail("STLS")
	c.login("bob@example.com")
	c.ok("RETR 1")
	if got := c.lines(); !equal(got, stuffed(msgFirst)) {
		t.Fatalf("RETR over TLS = %q", got)
	}
	c.ok("QUIT")
}

func TestSTLSDropsPipelinedPlaintext(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := selfSigned(t)
	ts := newTestServer(t, func(o *pop3d.Options) { o.TLSConfig = cfg })
	c := ts.dial()
	// A command injected after STLS in the clear must not run inside TLS.
	c.send("STLS\r\nUSER mallory@example.com")
	if got := c.line(); got != "+OK begin TLS negotiation" {
		t.Fatalf("STLS = %q", got)
	}
	tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := tc.Handshake(); err == nil {
		// The server either drops the injected line or fails the handshake
		// on it; it must never answer it as a command.
		c = newClient(t, tc)
		c.fail("PASS x")
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := selfSigned(t)
	ts := &testServer{t: t, dsn: t.TempDir() + "/mail.db"}
	ts.st = openStore(t, ts.dsn)
	ts.start(ts.st, func(ln net.Listener) net.Listener { return tls.NewListener(ln, cfg) },
		func(o *pop3d.Options) {
			o.TLSConfig = cfg
			o.Auth = passwords{"bob@example.com": "secret"}
		})
	ts.ingest(msgFirst, "bob@example.com")
	tc, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, tc)
	c.line()
	capa := strings.Join(c.multi("CAPA"), " ")
	if strings.Contains(capa, "STLS") || !strings.Contains(capa, "USER") {
		t.Fatalf("CAPA on implicit TLS = %q", capa)
	}
	c.ok("USER bob@example.com")
	if got := c.cmd("PASS secret"); got != "+OK bob@example.com has 1 messages" {
		t.Fatalf("PASS = %q", got)
	}
}

// passwords is an Authenticator over a map.
type passwords map[string]string

func (p passwords) Check(_ context.Context, user, pass string) error {
	if want, ok := p[user]; ok && want == pass {
		return nil
	}
	return errors.New("bad password")
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := selfSigned(t)
	auth := passwords{"bob@example.com": "secret pass"}

	t.Run("plaintext refused before TLS", func(t *testing.T) {
		ts := newTestServer(t, func(o *pop3d.Options) { o.TLSConfig = cfg; o.Auth = auth })
		c := ts.dial()
		capa := strings.Join(c.multi("CAPA"), " ")
		if strings.Contains(capa, "USER") || strings.Contains(capa, "SASL") || !strings.Contains(capa, "STLS") {
			t.Fatalf("CAPA before TLS = %q", capa)
		}
		c.fail("USER bob@example.com")
		c.fail("PASS secret pass")
		c.fail("AUTH PLAIN " + plain("", "bob@example.com", "secret pass"))
		c.ok("STLS")
		tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c = newClient(t, tc)
		c.ok("USER bob@example.com")
		if got := c.cmd("PASS secret"); got != "-ERR [AUTH] invalid user name or password" {
			t.Fatalf("wrong password: %q", got)
		}
		c.fail("STAT")
		c.ok("USER carol@example.com")
		c.fail("PASS secret pass")
		if got := c.cmd("AUTH PLAIN " + plain("", "bob@example.com", "nope")); !strings.HasPrefix(got, "-ERR [AUTH]") {
			t.Fatalf("wrong AUTH PLAIN: %q", got)
		}
		c.ok("AUTH PLAIN " + plain("", "Bob@Example.com", "secret pass"))
		c.ok("STAT")
	})
	t.Run("insecure allowed", func(t *testing.T) {
		ts := newTestServer(t, func(o *pop3d.Options) { o.Auth = auth; o.AllowInsecureAuth = true })
		c := ts.dial()
		c.ok("USER bob@example.com")
		c.fail("PASS wrong")
		c.ok("USER bob@example.com")
		c.ok("PASS secret pass")
	})
}

// TestBadCommands sends malformed and out-of-state commands: each gets
// -ERR, and the session carries on.
func TestBadCommands(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.MaxBadCommands = 1000 })
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	before := []string{
		"", " ", "FOO", "NOOPX", "NO", "US ER bob", "\x00\x01\x02", "APOP bob@example.com 0123456789abcdef",
		"STAT", "LIST", "LIST 1", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP",
		"PASS x", "USER", "USER  ", "USER a b", "USER a\x01b", "USER <>", "AUTH FOO", "AUTH PLAIN a b", "AUTH PLAIN !!!", "STLS",
		"CAPA x", "QUIT now", "LAST", "\xff\xfe",
	}
	for _, line := range before {
		c.fail(line)
		c.ok("CAPA")
		c.lines()
	}
	c.login("bob@example.com")
	after := []string{
		"", "FOO", "USER bob@example.com", "PASS x", "AUTH PLAIN", "AUTH", "STLS",
		"STAT 1", "RSET 1", "NOOP 1", "QUIT now",
		"LIST x", "LIST 1 2", "LIST -1", "LIST 0", "LIST 2", "LIST 99999999999999999999", "LIST +1", "LIST 0x1",
		"UIDL x", "UIDL 0", "UIDL 2",
		"RETR", "RETR x", "RETR 0", "RETR 2", "RETR -1", "RETR 1 2", "RETR 1.0",
		"TOP", "TOP 1", "TOP x 1", "TOP 1 x", "TOP 1 -1", "TOP 2 0", "TOP 1 1 1",
		"DELE", "DELE 0", "DELE 2", "DELE x",
	}
	for _, line := range after {
		c.fail(line)
		c.ok("NOOP")
	}
	// The maildrop is intact.
	if got := c.cmd("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Fatalf("STAT = %q", got)
	}
	c.ok("QUIT")
	c.expectClosed()
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d messages", n)
	}
}

func TestLongLineRefusedAndSessionUsable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.dial()
	c.fail("USER " + strings.Repeat("x", 1<<20))
	c.login("bob@example.com")
	c.fail("NOOP " + strings.Repeat("y", 5000))
	c.ok("NOOP")
}

func TestMaxBadCommandsCloses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.MaxBadCommands = 3 })
	c := ts.dial()
	c.fail("FOO")
	c.fail("STAT")
	c.send("BAR")
	if got := c.expectClosed(); !strings.HasPrefix(got, "-ERR") || strings.Count(got, "\r\n") != 1 {
		t.Fatalf("last reply %q", got)
	}
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.send("USER bob@example.com\r\nPASS x\r\nSTAT\r\nUIDL 1\r\nRETR 1\r\nDELE 1\r\nQUIT")
	got := c.expectClosed()
	want := []string{"+OK send PASS", "+OK bob@example.com has 1 messages", fmt.Sprintf("+OK 1 %d", len(msgFirst))}
	lines := strings.Split(got, "\r\n")
	if !equal(lines[:3], want) || !strings.HasPrefix(lines[3], "+OK 1 ") || lines[4] != fmt.Sprintf("+OK %d octets", len(msgFirst)) {
		t.Fatalf("pipelined replies: %q", got)
	}
	if !strings.HasSuffix(got, ".\r\n+OK message 1 deleted\r\n+OK mailsandbox POP3 server signing off (0 messages left)\r\n") {
		t.Fatalf("pipelined replies end: %q", got)
	}
	if n := len(ts.inbox("bob@example.com")); n != 0 {
		t.Fatalf("bob has %d messages", n)
	}
}

// panicStore is the real store with Entries broken, to check that a panic
// in a session is contained.
type panicStore struct{ *store.Store }

func (panicStore) Entries(context.Context, int64) ([]store.Entry, error) { panic("boom") }

func TestPanicIsContained(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.start(panicStore{ts.st}, nil)
	c := ts.dial()
	c.ok("USER bob@example.com")
	c.send("PASS x")
	if got := c.expectClosed(); got != "-ERR [SYS/TEMP] internal server error\r\n" {
		t.Fatalf("reply to panic: %q", got)
	}
	if !strings.Contains(ts.logs.String(), "pop3 panic") {
		t.Fatalf("panic not logged: %s", ts.logs.String())
	}
	// The server still serves, and the lock was released.
	unlock, err := ts.st.LockMailbox(context.Background(), "bob@example.com")
	if err != nil {
		t.Fatalf("lock after panic: %v", err)
	}
	unlock()
	c = ts.dial()
	c.ok("CAPA")
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.MaxConnections = 1 })
	c1 := ts.dial()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, nc)
	if got := c2.expectClosed(); !strings.HasPrefix(got, "-ERR [SYS/TEMP]") {
		t.Fatalf("over the limit: %q", got)
	}
	c1.login("bob@example.com")
	c1.ok("QUIT")
	c1.expectClosed()
	c3 := ts.dial()
	c3.ok("CAPA")
}

func TestShutdownEndsIdleSessionsWithoutUpdate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := c.expectClosed(); got != "-ERR [SYS/TEMP] server shutting down\r\n" {
		t.Fatalf("shutdown reply %q", got)
	}
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d messages after shutdown, want 1", n)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
}

// BenchmarkRETR downloads one 100 KB message over a socket per iteration.
func BenchmarkRETR(b *testing.B) {
	ts := newTestServer(b)
	body := strings.Repeat("a line of text for the benchmark, seventy characters or so, and more\r\n", 1500)
	ts.ingest("Subject: bench\r\n\r\n"+body, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		c.ok("RETR 1")
		c.lines()
	}
}

func TestCloseEndsSessionsAndServe(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	c := ts.dial()
	c.login("bob@example.com")
	c.ok("DELE 1")
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c.expectClosed()
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d messages after Close, want 1", n)
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Serve(ln); !errors.Is(err, pop3d.ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
	if err := ts.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
}
