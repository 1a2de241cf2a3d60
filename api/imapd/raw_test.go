package imapd_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestIdleSeesIngest: a client IDLEs in INBOX and gets EXISTS when mail is
// captured, without polling.
func TestIdleSeesIngest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("one", "x"))
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	c.send("i1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE answered %q", l)
	}
	ts.ingest(t, "bob@example.com", textMsg("two", "y"))
	if l := c.line(); l != "* 2 EXISTS" {
		t.Fatalf("during IDLE got %q", l)
	}
	if l := c.line(); l != "* 2 RECENT" {
		t.Fatalf("during IDLE got %q", l)
	}
	// Flags changed elsewhere (REST marks it seen) arrive too.
	es, _, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "bob@example.com", Subject: "two"})
	if err := ts.st.SetSeen(context.Background(), es[0].ID, "bob@example.com", true); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); l != `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))` {
		t.Fatalf("during IDLE got %q", l)
	}
	// Deleted through REST (or POP3): EXPUNGE.
	if err := ts.st.DeleteMessage(context.Background(), es[0].ID); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); l != "* 2 EXPUNGE" {
		t.Fatalf("during IDLE got %q", l)
	}
	// It was recent: the count goes with it, once (Dovecot sends it at
	// its next sync, DONE's at the latest).
	if l := c.line(); l != "* 1 RECENT" {
		t.Fatalf("during IDLE got %q", l)
	}
	c.send("DONE")
	if l := c.line(); !strings.HasPrefix(l, "i1 OK") {
		t.Fatalf("after DONE %q", l)
	}
}

// TestTwoSessions: changes one session makes reach the other, each
// reported once, with correct sequence numbers.
func TestTwoSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, s := range []string{"a", "b", "c", "d"} {
		ts.ingest(t, "bob@example.com", textMsg(s, s))
	}
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	a.login("bob@example.com")
	b.login("bob@example.com")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")

	u := a.ok(`STORE 2 +FLAGS (\Deleted $Later)`)
	// The new keyword is announced first (FLAGS, PERMANENTFLAGS); \Recent
	// is a's: it selected first.
	if len(u) != 3 || u[0] != `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Later)` ||
		u[1] != `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Later \*)] Flags permitted` ||
		u[2] != `* 2 FETCH (FLAGS ($Later \Deleted \Recent))` {
		t.Fatalf("store answer %q", u)
	}
	u = b.ok("NOOP")
	if len(u) != 3 || u[2] != `* 2 FETCH (UID 2 FLAGS ($Later \Deleted))` || !strings.HasPrefix(u[0], "* FLAGS (") {
		t.Fatalf("b after store %q", u)
	}
	// Nothing twice for a.
	if u := a.ok("NOOP"); len(u) != 0 {
		t.Fatalf("a got its own change back: %q", u)
	}
	u = a.ok("EXPUNGE")
	// The message was recent for a: RECENT follows (as Dovecot).
	if strings.Join(u, "|") != "* 2 EXPUNGE|* 3 RECENT" {
		t.Fatalf("expunge answer %q", u)
	}
	// b does not learn of the expunge during FETCH (RFC 3501 7.4.1), then
	// does at NOOP; its sequence numbers shift only then.
	u = b.ok("FETCH 4 (UID)")
	if len(u) != 1 || u[0] != "* 4 FETCH (UID 4)" {
		t.Fatalf("b fetch before expunge seen %q", u)
	}
	u = b.ok("NOOP")
	if len(u) != 1 || u[0] != "* 2 EXPUNGE" {
		t.Fatalf("b noop %q", u)
	}
	u = b.ok("FETCH 3 (UID)")
	if len(u) != 1 || u[0] != "* 3 FETCH (UID 4)" {
		t.Fatalf("b fetch after expunge %q", u)
	}
	// b appends to INBOX and moves one out; a sees EXISTS and EXPUNGE.
	b.ok("APPEND INBOX {23}\r\nSubject: appended\r\n\r\nx")
	u = b.ok("UID MOVE 1 Trash")
	if len(grep(u, "EXPUNGE")) != 1 || grep(u, "EXPUNGE")[0] != "* 1 EXPUNGE" || len(grep(u, "COPYUID")) != 1 {
		t.Fatalf("b move %q", u)
	}
	u = a.ok("NOOP")
	if strings.Join(u, "|") != "* 1 EXPUNGE|* 3 EXISTS|* 2 RECENT" {
		t.Fatalf("a noop after append and move %q", u)
	}
	u = a.ok("UID FETCH 1:* (UID)")
	if strings.Join(u, "|") != "* 1 FETCH (UID 3)|* 2 FETCH (UID 4)|* 3 FETCH (UID 5)" {
		t.Fatalf("a view %q", u)
	}
}

// TestMoveAndExpungeResponses covers the library's beta gaps: MOVE reports
// COPYUID then one EXPUNGE per message (no "* 0 EXPUNGE", no duplicates).
func TestMoveAndExpungeResponses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, s := range []string{"a", "b", "c"} {
		ts.ingest(t, "bob@example.com", textMsg(s, s))
	}
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("CREATE Archive")
	c.ok("SELECT INBOX")
	u := c.ok("MOVE 1:2 Archive")
	want := []string{"* OK [COPYUID", "* 2 EXPUNGE", "* 1 EXPUNGE", "* 1 RECENT"}
	if len(u) != len(want) {
		t.Fatalf("move responses %q", u)
	}
	for i, w := range want {
		if !strings.HasPrefix(u[i], w) {
			t.Fatalf("move responses %q, want %q", u, want)
		}
	}
	if !strings.Contains(u[0], " 1:2 1:2]") {
		t.Fatalf("COPYUID %q", u[0])
	}
	if u := c.ok("NOOP"); len(u) != 0 {
		t.Fatalf("EXPUNGE repeated: %q", u)
	}
	if u := c.ok("FETCH 1 (UID)"); u[0] != "* 1 FETCH (UID 3)" {
		t.Fatalf("after move %q", u)
	}
	// RFC 6851: MOVE into the selected folder works like COPY + EXPUNGE.
	// One recent message went, one came: no RECENT (as Dovecot).
	u = c.ok("MOVE 1 INBOX")
	if strings.Join(u, "|") != "* OK [COPYUID "+strings.Fields(u[0])[3]+" 3 4] COPY completed|* 1 EXPUNGE|* 1 EXISTS" {
		t.Fatalf("move onto itself: %q", u)
	}
	_, st := c.do("MOVE 1 Nowhere")
	if !strings.HasPrefix(st, "NO [TRYCREATE]") {
		t.Fatalf("move to missing folder: %s", st)
	}
	c.ok("SELECT Archive")
	c.ok(`STORE 1:* +FLAGS.SILENT (\Deleted)`)
	u = c.ok("UID EXPUNGE 2")
	if strings.Join(u, "|") != "* 2 EXPUNGE|* 1 RECENT" { // both were recent here
		t.Fatalf("uid expunge %q", u)
	}
	// CLOSE expunges without responses.
	if u := c.ok("CLOSE"); len(u) != 0 {
		t.Fatalf("close %q", u)
	}
	if f, _ := ts.st.Folder(context.Background(), "bob@example.com", "Archive"); f.Total != 0 {
		t.Fatalf("archive after close: %+v", f)
	}
}

// TestExamineIsReadOnly: the library prints [READ-ONLY]; this package
// enforces it.
func TestExamineIsReadOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("a", "body"))
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok(`STATUS INBOX (MESSAGES)`)
	_, st := c.do("EXAMINE INBOX")
	if !strings.HasPrefix(st, "OK [READ-ONLY]") {
		t.Fatalf("examine: %s", st)
	}
	u := c.ok("FETCH 1 (BODY[TEXT])")
	if len(u) != 1 || strings.Contains(u[0], "FLAGS") {
		t.Fatalf("fetch in examine %q", u)
	}
	for _, cmd := range []string{`STORE 1 +FLAGS (\Deleted)`, "EXPUNGE", "MOVE 1 Trash"} {
		if _, st := c.do("%s", cmd); !strings.HasPrefix(st, "NO") {
			t.Fatalf("%s in examine: %s", cmd, st)
		}
	}
	c.ok("COPY 1 Trash") // copying out is reading
	c.ok("CLOSE")
	es, _, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "bob@example.com", Folder: "INBOX"})
	if len(es) != 1 || es[0].Seen {
		t.Fatalf("examine changed the mailbox: %+v", es)
	}
}

// TestKeywordsKeepCase: keywords are stored and returned as the client
// spelled them, and match without case.
func TestKeywordsKeepCase(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("a", "body"))
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	u := c.ok(`STORE 1 +FLAGS ($MyLabel \flagged)`)
	if len(u) != 3 || u[2] != `* 1 FETCH (FLAGS ($MyLabel \Flagged \Recent))` || u[0] != `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $MyLabel)` {
		t.Fatalf("store %q", u)
	}
	if u := c.ok("SEARCH KEYWORD $mylabel"); u[0] != "* SEARCH 1" {
		t.Fatalf("search %q", u)
	}
	u = c.ok(`STORE 1 -FLAGS ($MYLABEL)`)
	if u[0] != `* 1 FETCH (FLAGS (\Flagged \Recent))` {
		t.Fatalf("remove %q", u)
	}
	u = c.ok("SELECT INBOX")
	if len(grep(u, "PERMANENTFLAGS")) != 1 || !strings.Contains(grep(u, "PERMANENTFLAGS")[0], `\*`) {
		t.Fatalf("select %q", u)
	}
}

// TestBadInput: malformed commands, huge literals, unknown folders and
// commands in the wrong state get a tagged NO or BAD and the session goes
// on.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *imapd.Options) { o.MaxLiteralBytes = 1000 })
	ts.ingest(t, "bob@example.com", textMsg("a", "body"))
	c := dial(t, ts.addr)
	for _, cmd := range []string{"SELECT INBOX", "FETCH 1 (FLAGS)", "LOGIN"} {
		if _, st := c.do("%s", cmd); !strings.HasPrefix(st, "BAD") && !strings.HasPrefix(st, "NO") {
			t.Fatalf("%q before login: %s", cmd, st)
		}
	}
	c.login("bob@example.com")
	bad := []string{
		"FROBNICATE",
		"FETCH 1 (FLAGS)",       // not selected
		"SELECT",                // missing argument
		"LIST",                  //
		`STORE 1 +FLAGS (\Seen`, // unbalanced
		"SELECT Nowhere",
		"STATUS Nowhere (MESSAGES)",
		"DELETE Nowhere",
		"RENAME Nowhere Somewhere",
		"CREATE INBOX",
		"RENAME Trash INBOX",
		"APPEND INBOX {99999999}",
	}
	for _, cmd := range bad {
		if _, st := c.do("%s", cmd); !strings.HasPrefix(st, "BAD") && !strings.HasPrefix(st, "NO") {
			t.Fatalf("%q: %s", cmd, st)
		}
	}
	c.ok("SELECT INBOX")
	for _, cmd := range []string{"FETCH 0:x (FLAGS)", "FETCH 1 (NOSUCH)", "SEARCH NOSUCHKEY", "UID FROB 1", "COPY 1"} {
		if _, st := c.do("%s", cmd); !strings.HasPrefix(st, "BAD") && !strings.HasPrefix(st, "NO") {
			t.Fatalf("%q: %s", cmd, st)
		}
	}
	// Out of range is not an error: nothing is returned.
	if u := c.ok("FETCH 5:9 (FLAGS)"); len(u) != 0 {
		t.Fatalf("fetch out of range %q", u)
	}
	if u := c.ok("FETCH 1 (FLAGS)"); len(u) != 1 {
		t.Fatalf("session not alive: %q", u)
	}
	f, _ := ts.st.Folders(context.Background(), "bob@example.com")
	if len(f) != 4 || f[0].Total != 1 {
		t.Fatalf("bad input changed the mailbox: %+v", f)
	}
}

// TestAuthenticatePlainAndAuthFile: AUTHENTICATE PLAIN logs in; with an
// Authenticator, wrong passwords are refused.
func TestAuthenticatePlainAndAuthFile(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *imapd.Options) { o.Auth = fixedAuth{"bob@example.com": "right"} })
	c := dial(t, ts.addr)
	if u := c.ok("CAPABILITY"); strings.Contains(u[0], "LOGINDISABLED") {
		t.Fatalf("no TLS configured, so login must stay possible: %q", u)
	}
	if _, st := c.do("LOGIN bob@example.com wrong"); !strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %s", st)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00bob@example.com\x00right"))
	c.ok("AUTHENTICATE PLAIN %s", plain)
	if u := c.ok(`LIST "" INBOX`); len(u) != 1 {
		t.Fatalf("list %q", u)
	}
}

type fixedAuth map[string]string

func (a fixedAuth) Check(_ context.Context, user, pass string) error {
	if p, ok := a[user]; ok && p == pass {
		return nil
	}
	return store.ErrNotFound
}

// TestIMAP4rev2: a client that enables IMAP4rev2 gets its responses
// (ESEARCH, LIST on SELECT, no RECENT).
func TestIMAP4rev2(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("a", "needle"))
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	if u := c.ok("ENABLE IMAP4rev2"); len(u) != 1 || u[0] != "* ENABLED IMAP4rev2" {
		t.Fatalf("enable %q", u)
	}
	u := c.ok("SELECT INBOX")
	if len(grep(u, "RECENT")) != 0 || len(grep(u, `* LIST () "/" INBOX`)) != 1 {
		t.Fatalf("select %q", u)
	}
	if u := c.ok("SEARCH BODY needle"); len(u) != 1 || !strings.HasSuffix(u[0], "ALL 1") {
		t.Fatalf("search %q", u)
	}
	c.ok("UID SEARCH RETURN (SAVE) ALL")
	u = c.ok("UID FETCH $ (UID)")
	if len(u) != 1 || u[0] != "* 1 FETCH (UID 1)" {
		t.Fatalf("fetch saved search %q", u)
	}
}

// TestIdleTimeout: a silent client is logged out.
// Not parallel: a login beside the package's other tests could outlast
// the one-second idle timeout.
func TestIdleTimeout(t *testing.T) {
	// Long enough for a first login (it creates folders) on a loaded machine.
	ts := newTestServer(t, func(o *imapd.Options) { o.IdleTimeout = time.Second })
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q", l)
	}
}

// TestStarAndSelfCopy: "*" is the client's last message (or highest UID),
// and COPY into the selected folder announces the copies.
func TestStarAndSelfCopy(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, s := range []string{"a", "b", "c"} {
		ts.ingest(t, "bob@example.com", textMsg(s, s))
	}
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	if u := c.ok("FETCH * (UID)"); len(u) != 1 || u[0] != "* 3 FETCH (UID 3)" {
		t.Fatalf("fetch * %q", u)
	}
	if u := c.ok("UID FETCH 9:* (UID)"); len(u) != 1 || u[0] != "* 3 FETCH (UID 3)" {
		t.Fatalf("uid fetch 9:* %q", u)
	}
	if u := c.ok("SEARCH 2:*"); u[0] != "* SEARCH 2 3" {
		t.Fatalf("search 2:* %q", u)
	}
	u := c.ok("COPY 1:2 INBOX")
	if strings.Join(u, "|") != "* 5 EXISTS|* 5 RECENT" {
		t.Fatalf("copy into itself %q", u)
	}
	_, st := c.do("UID COPY 1:2 INBOX")
	if !strings.Contains(st, "[COPYUID ") || !strings.Contains(st, " 1:2 6:7]") {
		t.Fatalf("uid copy answer %s", st)
	}
	if u := c.ok(`UID STORE 6:* +FLAGS (\Answered)`); len(u) != 2 || u[0] != `* 6 FETCH (UID 6 FLAGS (\Answered \Recent))` {
		t.Fatalf("uid store %q", u)
	}
}
