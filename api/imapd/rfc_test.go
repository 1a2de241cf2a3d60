package imapd_test

import (
	"strings"
	"testing"
)

// TestSubscriptionsAreNames: subscriptions are a list of names of their
// own (RFC 3501 6.3.6, RFC 5258), answered as Dovecot answers.
func TestSubscriptionsAreNames(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("CREATE Foo/Bar")
	if u := c.ok(`LSUB "" "Foo*"`); len(u) != 0 {
		t.Fatalf("CREATE subscribed: %q", u)
	}
	c.ok("SUBSCRIBE Foo/Bar")
	c.ok("SUBSCRIBE Ghost/Kid") // a name without a folder may be subscribed
	checks := []struct{ cmd, want string }{
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" "Foo%"`, `* LIST (\HasChildren) "/" "Foo" (CHILDINFO ("SUBSCRIBED"))`},
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" "Foo*"`, `* LIST (\HasNoChildren \Subscribed) "/" "Foo/Bar"`},
		{`LSUB "" "Foo%"`, `* LSUB (\Noselect) "/" "Foo"`},
		{`LSUB "" "Foo*"`, `* LSUB () "/" "Foo/Bar"`},
		{`LIST (SUBSCRIBED) "" "Ghost/*"`, `* LIST (\NonExistent \Subscribed) "/" "Ghost/Kid"`},
		{`LIST "" "Ghost*"`, ``},
	}
	for _, ch := range checks {
		if u := c.ok("%s", ch.cmd); strings.Join(u, "|") != ch.want {
			t.Errorf("%s: got %q, want %q", ch.cmd, u, ch.want)
		}
	}
	// DELETE keeps the subscription; the name is then \NonExistent.
	c.ok("DELETE Foo/Bar")
	if u := c.ok(`LIST (SUBSCRIBED) "" "Foo*"`); strings.Join(u, "|") != `* LIST (\NonExistent \Subscribed) "/" "Foo/Bar"` {
		t.Errorf("after DELETE: %q", u)
	}
	c.ok("UNSUBSCRIBE Foo/Bar")
	c.ok("UNSUBSCRIBE Foo/Bar") // not subscribed: still fine
	if u := c.ok(`LSUB "" "*"`); strings.Join(u, "|") != `* LSUB () "/" INBOX|* LSUB () "/" "Drafts"|* LSUB () "/" "Ghost/Kid"|* LSUB () "/" "Sent"|* LSUB () "/" "Trash"` {
		t.Errorf("LSUB at the end: %q", u)
	}
}

// TestRecent: a new message is \Recent in exactly one session, the first
// to select the folder after it arrived (RFC 3501 2.3.2); EXAMINE sees it
// without taking it.
func TestRecent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("one", "x"))
	ts.ingest(t, "bob@example.com", textMsg("two", "y"))
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	a.login("bob@example.com")
	b.login("bob@example.com")
	if u := b.ok("STATUS INBOX (RECENT MESSAGES)"); u[0] != `* STATUS INBOX (MESSAGES 2 RECENT 2)` {
		t.Fatalf("status before select %q", u)
	}
	if u := b.ok("EXAMINE INBOX"); len(grep(u, "* 2 RECENT")) != 1 {
		t.Fatalf("examine %q", u)
	}
	if u := b.ok("FETCH 1 (FLAGS)"); u[0] != `* 1 FETCH (FLAGS (\Recent))` {
		t.Fatalf("fetch in examine %q", u)
	}
	if u := a.ok("SELECT INBOX"); len(grep(u, "* 2 RECENT")) != 1 {
		t.Fatalf("select %q", u)
	}
	// STATUS of the selected folder counts what is recent in this session
	// (as Dovecot), from another session what nobody took.
	if u := a.ok("STATUS INBOX (RECENT)"); u[0] != `* STATUS INBOX (RECENT 2)` {
		t.Fatalf("status after select %q", u)
	}
	if u := dialLogin(t, ts.addr).ok("STATUS INBOX (RECENT)"); u[0] != `* STATUS INBOX (RECENT 0)` {
		t.Fatalf("status from a session without it selected %q", u)
	}
	// b selects after a: nothing is recent for b.
	if u := b.ok("SELECT INBOX"); len(grep(u, "* 0 RECENT")) != 1 {
		t.Fatalf("second select %q", u)
	}
	if u := b.ok("FETCH 1:* (FLAGS)"); strings.Join(u, "|") != `* 1 FETCH (FLAGS ())|* 2 FETCH (FLAGS ())` {
		t.Fatalf("fetch in b %q", u)
	}
	// New mail while both have it selected: recent in one of them only.
	ts.ingest(t, "bob@example.com", textMsg("three", "z"))
	ua, ub := a.ok("NOOP"), b.ok("NOOP")
	// RECENT only where the count changed (as Dovecot).
	if strings.Join(ua, "|") != "* 3 EXISTS|* 3 RECENT" || strings.Join(ub, "|") != "* 3 EXISTS" {
		t.Fatalf("noop after new mail: a %q, b %q", ua, ub)
	}
	a.ok(`STORE 1 +FLAGS (\Seen)`)
	if u := b.ok("NOOP"); strings.Join(u, "|") != `* 1 FETCH (UID 1 FLAGS (\Seen))` {
		t.Fatalf("b after a's store %q", u)
	}
	checks := []struct {
		c         *rawClient
		cmd, want string
	}{
		{a, "SEARCH RECENT", "* SEARCH 1 2 3"},
		{a, "SEARCH NEW", "* SEARCH 2 3"},
		{a, "SEARCH OLD", "* SEARCH"},
		{b, "SEARCH RECENT", "* SEARCH"},
		{b, "SEARCH OLD", "* SEARCH 1 2 3"},
		{a, "UID SEARCH NOT RECENT", "* SEARCH"},
		{a, "FETCH 3 (FLAGS)", `* 3 FETCH (FLAGS (\Recent))`},
	}
	for _, ch := range checks {
		if u := ch.c.ok("%s", ch.cmd); len(u) != 1 || u[0] != ch.want {
			t.Errorf("%s: %q, want %q", ch.cmd, u, ch.want)
		}
	}
	// Recent is not a flag a client can set.
	b.ok(`STORE 1 +FLAGS (\Recent)`)
	if u := b.ok("FETCH 1 (FLAGS)"); u[0] != `* 1 FETCH (FLAGS (\Seen))` {
		t.Fatalf("after storing \\Recent %q", u)
	}
}

// TestRecentAfterExpunge: an EXPUNGE of a message recent in a session is
// followed by that session's new RECENT count, in a read-only session too.
// A FETCH, STORE or SEARCH (which may not expunge) sends neither, nor the
// RECENT for new mail: the next NOOP does (as Dovecot).
func TestRecentAfterExpunge(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, s := range []string{"one", "two", "three", "four"} {
		ts.ingest(t, "bob@example.com", textMsg(s, s))
	}
	a, b, e := dialLogin(t, ts.addr), dialLogin(t, ts.addr), dialLogin(t, ts.addr)
	e.ok("EXAMINE INBOX") // sees four recent, takes none
	a.ok("SELECT INBOX")  // takes the four
	b.ok("SELECT INBOX")
	type step struct {
		c         *rawClient
		cmd, want string
	}
	run := func(steps []step) {
		t.Helper()
		for _, st := range steps {
			if u := st.c.ok("%s", st.cmd); strings.Join(u, "|") != st.want {
				t.Fatalf("%s: %q, want %q", st.cmd, u, st.want)
			}
		}
	}
	run([]step{
		{a, `STORE 1 +FLAGS.SILENT (\Deleted)`, ""},
		{a, "EXPUNGE", "* 1 EXPUNGE|* 3 RECENT"},
		{a, "NOOP", ""},
		{b, "NOOP", "* 1 EXPUNGE"}, // nothing was recent for b
		{e, "NOOP", "* 1 EXPUNGE|* 3 RECENT"},
		{b, `STORE 1 +FLAGS.SILENT (\Deleted)`, ""},
		{a, "NOOP", `* 1 FETCH (UID 2 FLAGS (\Deleted \Recent))`},
		{b, "EXPUNGE", "* 1 EXPUNGE"},
		// The FETCH holds the EXPUNGE back, and the RECENT with it.
		{a, "FETCH 1 (UID)", "* 1 FETCH (UID 2)"},
		{a, "NOOP", "* 1 EXPUNGE|* 2 RECENT"},
		{a, "NOOP", ""},
		{b, "UNSELECT", ""}, // so that a takes the next message
	})
	ts.ingest(t, "bob@example.com", textMsg("five", "five"))
	run([]step{
		// New mail during a FETCH: EXISTS then, RECENT at the next NOOP.
		{a, "FETCH 1 (UID)", "* 1 FETCH (UID 3)|* 3 EXISTS"},
		{a, "NOOP", "* 3 RECENT"},
		{a, "NOOP", ""},
		// e lost a recent message and gained one: the count it was sent
		// holds.
		{e, "NOOP", "* 1 EXPUNGE|* 3 EXISTS"},
	})
}

// TestInvalidMailboxNames: a name that is not valid modified UTF-7 gets a
// plain NO, as from Dovecot, never a server-bug code.
func TestInvalidMailboxNames(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	for _, cmd := range []string{`CREATE "&Jjo"`, `SELECT "&ZZZ"`, `SUBSCRIBE "&ZZZ"`, `STATUS "&ZZZ" (MESSAGES)`,
		`RENAME INBOX "&Jjo"`, `DELETE "&Jjo"`, `LIST "" "&Jjo"`, `EXAMINE "&"`} {
		_, st := c.do("%s", cmd)
		if strings.Contains(st, "SERVERBUG") || !(strings.HasPrefix(st, "NO") || strings.HasPrefix(st, "BAD")) {
			t.Errorf("%s: %s", cmd, st)
		}
	}
	// Valid ones work, and come back as sent.
	c.ok(`CREATE "&Jjo-"`)
	c.ok(`CREATE "a&-b"`)
	if u := grep(c.ok(`LIST "" "*"`), "&"); strings.Join(u, "|") != `* LIST (\HasNoChildren) "/" "a&-b"|* LIST (\HasNoChildren) "/" "&Jjo-"` {
		t.Fatalf("list %q", u)
	}
	// APPEND: refused before the client sends its literal.
	c.send(`ap APPEND "&Jjo" {1}`)
	if l := c.line(); l != "ap NO Mailbox name is not valid mUTF-7" {
		t.Fatalf("append: %q", l)
	}
	c.ok("NOOP")
}

// TestAddressSearchAndEnvelope: SEARCH FROM/TO/CC/BCC match addresses as
// parsed (comments, display names, encoded words), header searches decode
// RFC 2047, and ENVELOPE keeps groups and source routes (see routes.go).
func TestAddressSearchAndEnvelope(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", "From: <user (comment)@ (comment) example.org>\r\n"+
		"To: team: a@x.test, b@y.test;, other: ;\r\n"+
		"Cc: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n"+
		"Bcc: <@route.test:routed@example.net>\r\n"+
		"Subject: =?UTF-8?B?w4RyZ2VyIG1pdCBkZXIgQmFobg==?=\r\n"+
		"X-Note: =?ISO-8859-1?Q?caf=E9?=\r\n\r\nbody\r\n")
	ts.ingest(t, "bob@example.com", textMsg("plain", "x"))
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	checks := []struct{ cmd, want string }{
		{"SEARCH FROM user@example.org", "* SEARCH 1"},
		{"SEARCH FROM alice", "* SEARCH 2"},
		{`SEARCH TO "b@y.test"`, "* SEARCH 1"},
		{"SEARCH TO team", "* SEARCH 1"},
		{"SEARCH CC Müller", "* SEARCH 1"},
		{"SEARCH CHARSET UTF-8 CC {7}\r\nJürgen", "* SEARCH 1"},
		{"SEARCH BCC routed@example.net", "* SEARCH 1"},
		{"SEARCH SUBJECT {6}\r\nÄrger", "* SEARCH 1"},
		{"SEARCH HEADER X-Note café", "* SEARCH 1"},
		{"SEARCH FROM comment", "* SEARCH"},
	}
	for _, ch := range checks {
		u := c.ok("%s", ch.cmd)
		if l := grep(u, "* "); len(l) != 1 || l[0] != ch.want {
			t.Errorf("%s: %q, want %q", ch.cmd, u, ch.want)
		}
	}
	u := c.ok("FETCH 1 (ENVELOPE)")
	want := `* 1 FETCH (ENVELOPE (NIL "=?utf-8?q?=C3=84rger_mit_der_Bahn?=" ` +
		`((NIL NIL "user" "example.org")) ((NIL NIL "user" "example.org")) ((NIL NIL "user" "example.org")) ` +
		`((NIL NIL "team" NIL) (NIL NIL "a" "x.test") (NIL NIL "b" "y.test") (NIL NIL NIL NIL) (NIL NIL "other" NIL) (NIL NIL NIL NIL)) ` +
		`(("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=" NIL "juergen" "example.de")) ((NIL "@route.test" "routed" "example.net")) NIL NIL))`
	if len(u) != 1 || u[0] != want {
		t.Fatalf("envelope\n%q\nwant\n%q", u, want)
	}
}

// TestMoreExtensions: BINARY (RFC 3516) and UNAUTHENTICATE (RFC 8437),
// which the library serves once offered.
func TestMoreExtensions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", multipartMsg)
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	if u := c.ok("CAPABILITY"); !strings.Contains(u[0], " BINARY") || !strings.Contains(u[0], " UNAUTHENTICATE") {
		t.Fatalf("capabilities %q", u)
	}
	c.ok("SELECT INBOX")
	u := c.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
	if len(u) != 1 || !strings.Contains(u[0], "BINARY.SIZE[2] 15") || !strings.Contains(u[0], "%PDF-1.4") {
		t.Fatalf("binary fetch %q", u)
	}
	c.ok("UNAUTHENTICATE")
	if _, st := c.do("SELECT INBOX"); !strings.HasPrefix(st, "BAD") && !strings.HasPrefix(st, "NO") {
		t.Fatalf("select after UNAUTHENTICATE: %s", st)
	}
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
}

func dialLogin(t *testing.T, addr string) *rawClient {
	c := dial(t, addr)
	c.login("bob@example.com")
	return c
}

// TestOddInputNoServerBug: odd but well-formed commands get OK, NO or BAD,
// never a server-bug code, and the session goes on.
func TestOddInputNoServerBug(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", multipartMsg)
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	for _, cmd := range []string{
		"UID STORE 0:0 +FLAGS (x)", "UID COPY 0 INBOX", "UID MOVE 4294967295 INBOX", "FETCH 4294967295 (FLAGS)",
		"FETCH 1 (BODY[9.9.9] BODY[HEADER.FIELDS ()] BINARY[3])", "SEARCH CHARSET X-UNKNOWN TEXT a",
		"SEARCH UID 0", `CREATE ""`, `CREATE "a//b"`, `RENAME INBOX INBOX/x`, `SELECT ""`, `STATUS INBOX ()`,
		`SUBSCRIBE ""`, `UNSUBSCRIBE "never"`, `LIST "" ""`, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`,
		`STORE 1 FLAGS (\Recent $a $b)`, "EXPUNGE", "SELECT INBOX",
	} {
		if _, st := c.do("%s", cmd); strings.Contains(st, "SERVERBUG") {
			t.Errorf("%s: %s", cmd, st)
		}
	}
	c.ok("NOOP")
}
