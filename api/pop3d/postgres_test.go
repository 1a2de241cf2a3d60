package pop3d_test

import (
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// TestPostgres runs the core of the protocol over a PostgreSQL store (when
// MAILSANDBOX_TEST_PG names a database): reading, the maildrop lock, UIDL
// stability, and DELE+QUIT removing only this mailbox's copy.
func TestPostgres(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	ts := &testServer{t: t, dsn: dsn}
	ts.st = openStore(t, dsn)
	ts.start(ts.st, nil)
	ts.ingest(msgFirst, "bob@example.com", "carol@example.com")
	ts.ingest(msgBoth, "bob@example.com")

	c := ts.dial()
	if got := c.login("Bob@Example.com"); got != "+OK bob@example.com has 2 messages" {
		t.Fatalf("login: %q", got)
	}
	c2 := ts.dial()
	c2.ok("USER bob@example.com")
	if got := c2.cmd("PASS x"); got != "-ERR [IN-USE] maildrop already locked" {
		t.Fatalf("second session: %q", got)
	}
	c.ok("RETR 1")
	if got := c.lines(); !equal(got, stuffed(msgFirst)) {
		t.Fatalf("RETR 1 = %q", got)
	}
	uidl := c.multi("UIDL")
	c.ok("DELE 1")
	c.ok("QUIT")
	c.expectClosed()
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Fatalf("bob has %d messages, want 1", n)
	}
	if n := len(ts.inbox("carol@example.com")); n != 1 {
		t.Fatalf("carol has %d messages, want 1", n)
	}
	c2.login("bob@example.com")
	if got := c2.multi("UIDL"); len(got) != 1 || strings.Fields(got[0])[1] != strings.Fields(uidl[1])[1] {
		t.Fatalf("UIDL after delete = %q, before %q", got, uidl)
	}
}
