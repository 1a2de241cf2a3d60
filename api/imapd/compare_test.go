package imapd_test

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// step is one command of a comparison, on one of two connections.
type step struct {
	conn int
	cmd  string
}

func appendCmd(flags, msg string) string {
	return fmt.Sprintf("APPEND INBOX (%s) {%d+}\r\n%s", flags, len(msg), msg)
}

// transcript runs steps on two fresh connections logged in as user.
func transcript(t *testing.T, addr, user string, steps []step) []string {
	t.Helper()
	var cs []*imapConn
	for i := 0; i < 2; i++ {
		c, err := dialIMAP(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.conn.Close() })
		if _, st, err := c.do("LOGIN " + user + " pw"); err != nil || !strings.HasPrefix(st, "OK") {
			t.Fatalf("login: %s %v", st, err)
		}
		cs = append(cs, c)
	}
	var out []string
	for _, s := range steps {
		lines, err := cs[s.conn].scriptStep(s.cmd)
		if err != nil {
			t.Fatal(err)
		}
		lines[0] = fmt.Sprintf("%d%s", s.conn, lines[0])
		// Dovecot's hint that STATUS of the selected mailbox is wasteful.
		lines[len(lines)-1] = strings.TrimSuffix(lines[len(lines)-1], " [CLIENTBUG]")
		body := lines[1 : len(lines)-1]
		verb := strings.ToUpper(strings.Fields(s.cmd)[0])
		if verb == "SELECT" || verb == "EXAMINE" || verb == "LIST" || verb == "LSUB" {
			sort.Strings(body) // order of these responses carries no meaning
		}
		for i, l := range body {
			body[i] = normalizeForCompare(l)
			if verb == "NOOP" || verb == "APPEND" || verb == "WAIT" || verb == "DONE" {
				// Unsolicited FETCH: we add the UID (RFC 3501 allows it).
				body[i] = uidItemRE.ReplaceAllString(body[i], "(")
			}
			if !strings.Contains(s.cmd, "CHILDREN") {
				// We always say whether a name has children (RFC 5258 allows it).
				body[i] = strings.NewReplacer(`\HasNoChildren `, "", ` \HasNoChildren`, "", `\HasNoChildren`, "",
					`\HasChildren `, "", ` \HasChildren`, "", `\HasChildren`, "").Replace(body[i])
			}
		}
		out = append(out, lines...)
	}
	return out
}

// scriptStep runs one step of a transcript. Besides commands it knows
// IDLE (sent, up to the continuation), "WAIT line" (while idling: the
// responses up to that line, so that what comes next came after it) and
// DONE (the rest up to the tagged status): a step never depends on how
// soon a server pushes an update.
func (c *imapConn) scriptStep(cmd string) ([]string, error) {
	readUntil := func(last func(string) bool) ([]string, string, error) {
		var out []string
		for {
			l, err := c.line()
			if err != nil {
				return out, "", fmt.Errorf("%s: %w", cmd, err)
			}
			if last(l) {
				return out, l, nil
			}
			out = append(out, normalizeLine(l))
		}
	}
	tag := fmt.Sprintf("t%d", c.n)
	var u []string
	var end string
	var err error
	switch {
	case cmd == "IDLE":
		c.n++
		if _, err := io.WriteString(c.conn, fmt.Sprintf("t%d IDLE\r\n", c.n)); err != nil {
			return nil, err
		}
		u, end, err = readUntil(func(l string) bool { return strings.HasPrefix(l, "+") || strings.HasPrefix(l, "t") })
		if strings.HasPrefix(end, "+") {
			end = "+" // the text after it differs
		}
		end = "= " + end
	case strings.HasPrefix(cmd, "WAIT "):
		want := strings.TrimPrefix(cmd, "WAIT ")
		u, end, err = readUntil(func(l string) bool { return l == want })
		end = "= " + end
	case cmd == "DONE":
		if _, err := io.WriteString(c.conn, "DONE\r\n"); err != nil {
			return nil, err
		}
		u, end, err = readUntil(func(l string) bool { return strings.HasPrefix(l, tag+" ") })
		end, _, _ = strings.Cut(strings.TrimPrefix(end, tag+" "), " ")
		end = "= " + end
	default:
		return c.script([]string{cmd})
	}
	if err != nil {
		return nil, err
	}
	return append(append([]string{"> " + cmd}, u...), end), nil
}

// normalizeForCompare masks what two correct servers spell differently:
// quoting of mailbox names, the order of flags in a list.
func normalizeForCompare(l string) string {
	if strings.HasPrefix(l, "* LIST") || strings.HasPrefix(l, "* LSUB") || strings.HasPrefix(l, "* STATUS") {
		l = strings.ReplaceAll(l, `"`, "")
	}
	if strings.HasPrefix(l, "* STATUS ") && strings.HasSuffix(l, ")") {
		// Items in any order.
		i := strings.LastIndexByte(l, '(')
		f := strings.Fields(l[i+1 : len(l)-1])
		var pairs []string
		for k := 0; k+1 < len(f); k += 2 {
			pairs = append(pairs, f[k]+" "+f[k+1])
		}
		sort.Strings(pairs)
		l = l[:i+1] + strings.Join(pairs, " ") + ")"
	}
	// The library puts a space between the addresses of an ENVELOPE list.
	l = strings.ReplaceAll(l, ") (NIL", ")(NIL")
	l = strings.ReplaceAll(l, `") ("`, `")("`)
	for _, key := range []string{"FLAGS (", "PERMANENTFLAGS (", "* LIST (", "* LSUB ("} {
		i := strings.Index(l, key)
		if i < 0 {
			continue
		}
		j := strings.IndexByte(l[i+len(key):], ')')
		if j < 0 {
			continue
		}
		fl := strings.Fields(l[i+len(key) : i+len(key)+j])
		sort.Strings(fl)
		l = l[:i+len(key)] + strings.Join(fl, " ") + l[i+len(key)+j:]
	}
	return l
}

func msgText(subject string) string {
	return "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: " + subject +
		"\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <" + subject + "@example.com>\r\n\r\nbody " + subject + "\r\n"
}

// compareScenarios are sessions both servers must answer alike. Each
// behaviour also has a test of its own against our server alone (see
// rfc_test.go), which runs everywhere.
var (
	uidItemRE = regexp.MustCompile(`\(UID \d+ `)
)

var compareScenarios = map[string][]step{
	"recent": {
		{0, appendCmd("", msgText("one"))},
		{0, appendCmd(`\Seen`, msgText("two"))},
		{0, "STATUS INBOX (MESSAGES RECENT UNSEEN)"},
		{1, "EXAMINE INBOX"},
		{1, "FETCH 1:* (FLAGS)"},
		{0, "SELECT INBOX"},
		{0, "FETCH 1:* (FLAGS)"},
		{0, "SEARCH RECENT"},
		{0, "SEARCH NEW"},
		{0, "SEARCH OLD"},
		{1, "SELECT INBOX"},
		{1, "SEARCH RECENT"},
		{0, "STATUS INBOX (RECENT)"},
		{1, appendCmd("", msgText("three"))},
		{1, "SEARCH RECENT"},
		{0, "NOOP"},
		{0, "FETCH 3 (FLAGS)"},
		{1, "FETCH 3 (FLAGS)"},
	},
	// An EXPUNGE that changes the session's recent count: on its own
	// EXPUNGE and MOVE, at a NOOP after another session's, while idling,
	// and once a FETCH (which may not expunge) has held it back; new mail
	// seen during a FETCH. While idling Dovecot sends the RECENT at its
	// next sync, which may be DONE's: the WAIT stops at the EXPUNGE so
	// that the transcript is the same whenever the RECENT comes.
	"recent-expunge": {
		{0, appendCmd("", msgText("one"))},
		{0, appendCmd("", msgText("two"))},
		{0, appendCmd("", msgText("three"))},
		{0, appendCmd("", msgText("four"))},
		{0, appendCmd("", msgText("five"))},
		{0, "SELECT INBOX"},
		{1, "SELECT INBOX"},
		{1, `STORE 1 +FLAGS.SILENT (\Deleted)`},
		{1, "EXPUNGE"},
		{0, "NOOP"},
		{0, "NOOP"},
		{0, `STORE 1 +FLAGS.SILENT (\Deleted)`},
		{0, "EXPUNGE"},
		{0, "NOOP"},
		{1, "NOOP"},
		{1, `STORE 1 +FLAGS.SILENT (\Deleted)`},
		{0, "NOOP"},
		{0, "IDLE"},
		{1, "EXPUNGE"},
		{0, "WAIT * 1 EXPUNGE"},
		{0, "DONE"},
		{0, "NOOP"},
		{1, `STORE 1 +FLAGS.SILENT (\Deleted)`},
		{0, "NOOP"},
		{1, "EXPUNGE"},
		{0, "FETCH 1:* (FLAGS)"},
		{0, "NOOP"},
		{0, "NOOP"},
		{1, "UNSELECT"},
		{0, "IDLE"},
		{1, appendCmd("", msgText("six"))},
		{0, "WAIT * 2 EXISTS"},
		{0, "DONE"},
		{1, "SELECT INBOX"},
		{1, `STORE 1 +FLAGS.SILENT (\Deleted)`},
		{0, "NOOP"},
		{0, "IDLE"},
		{1, "EXPUNGE"},
		{0, "WAIT * 1 EXPUNGE"},
		{0, "DONE"},
		{0, "NOOP"},
		{0, "CREATE Archive"},
		{0, "MOVE 1 Archive"},
		{0, "NOOP"},
		// New mail and an expunge both held back by a FETCH.
		{1, "UNSELECT"},
		{1, appendCmd("", msgText("seven"))},
		{1, appendCmd("", msgText("eight"))},
		{0, "NOOP"},
		{1, "SELECT INBOX"},
		{1, `STORE 1 +FLAGS.SILENT (\Deleted)`},
		{0, "NOOP"},
		{1, "EXPUNGE"},
		{1, "UNSELECT"},
		{1, appendCmd("", msgText("nine"))},
		{0, "FETCH 1:* (FLAGS)"},
		{0, "NOOP"},
		{0, "NOOP"},
		{0, "FETCH 1:* (FLAGS)"},
		{1, "STATUS INBOX (RECENT)"},
		{1, appendCmd("", msgText("ten"))},
		{0, "FETCH 1 (FLAGS)"},
		{0, "NOOP"},
		{0, "FETCH 1:* (FLAGS)"},
	},
	// A read-only session's recent messages go too.
	"recent-expunge-examine": {
		{0, appendCmd("", msgText("one"))},
		{0, appendCmd("", msgText("two"))},
		{1, "EXAMINE INBOX"},
		{0, "SELECT INBOX"},
		{0, `STORE 2 +FLAGS.SILENT (\Deleted)`},
		{0, "EXPUNGE"},
		{1, "NOOP"},
		{1, "NOOP"},
		{0, "STATUS INBOX (RECENT)"},
	},
	"keywords": {
		{0, appendCmd("", msgText("one"))},
		{0, "SELECT INBOX"},
		{1, "SELECT INBOX"},
		{0, "STORE 1 +FLAGS ($New)"},
		{1, "NOOP"},
		{0, "STORE 1 +FLAGS.SILENT ($Silent)"},
		{1, "NOOP"},
		{0, appendCmd("$Appended", msgText("two"))},
		{1, "NOOP"},
		{1, "FETCH 1:* (FLAGS)"},
	},
	"move-to-selected": {
		{0, appendCmd("", msgText("one"))},
		{0, appendCmd("", msgText("two"))},
		{0, "SELECT INBOX"},
		{1, "SELECT INBOX"},
		{0, "MOVE 1 INBOX"},
		{0, "UID FETCH 1:* (UID)"},
		{1, "NOOP"},
	},
	"subscriptions": {
		{0, "CREATE Foo/Bar"},
		{0, `LSUB "" "Foo*"`},
		{0, "SUBSCRIBE Foo/Bar"},
		{0, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "Foo%"`},
		{0, `LIST (SUBSCRIBED RECURSIVEMATCH) "" "Foo*"`},
		{0, `LSUB "" "Foo%"`},
		{0, `LSUB "" "Foo*"`},
		{0, "DELETE Foo/Bar"},
		{0, `LIST (SUBSCRIBED) "" "Foo*"`},
		{0, "UNSUBSCRIBE Foo/Bar"},
		{0, `LSUB "" "Foo*"`},
	},
	"mutf7": {
		{0, `CREATE "&Jjo"`},
		{0, `SELECT "&ZZZ"`},
		{0, `STATUS "&ZZZ" (MESSAGES)`},
		{0, `CREATE "&Jjo-"`},
		{0, `LIST "" "&Jjo-"`},
	},
	// TEXT and BODY search through encodings (the shortcut for plain
	// messages must not change an answer).
	"search-text": {
		{0, appendCmd("", "Subject: plain\r\n\r\nthe Needle here\r\n")},
		{0, appendCmd("", "Subject: =?UTF-8?Q?needle_J=C3=BCrgen?=\r\n\r\nnothing\r\n")},
		{0, appendCmd("", "Subject: b64\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\nYSBuZWVkbGUgaW4gYmFzZTY0\r\n")},
		{0, appendCmd("", "Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"Content-Transfer-Encoding: quoted-printable\r\n\r\nnee=\r\ndle soft break, M=C3=BCller\r\n")},
		{0, appendCmd("", "Subject: latin1\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nM\xfcller\r\n")},
		{0, appendCmd("", "Subject: folded\r\n needle\r\n\r\nbody\r\n")},
		{0, appendCmd("", "Subject: none\r\n\r\nhay only\r\n")},
		{0, "SELECT INBOX"},
		{0, "SEARCH TEXT needle"},
		{0, "SEARCH BODY needle"},
		{0, "SEARCH TEXT NEEDLE"},
		{0, "SEARCH CHARSET UTF-8 TEXT {7+}\r\nM\xc3\xbcller"},
		{0, "SEARCH CHARSET UTF-8 BODY {6+}\r\nj\xc3\xbcrg"},
		{0, "SEARCH NOT TEXT hay"},
		{0, "SEARCH TEXT folded"},
	},
	// STATUS counts (read from the store's kept counts) as flags change
	// and messages go.
	"status-counts": {
		{0, appendCmd("", msgText("one"))},
		{0, appendCmd(`\Seen`, msgText("two"))},
		{0, appendCmd("", msgText("three"))},
		{1, "STATUS INBOX (MESSAGES UNSEEN UIDNEXT SIZE)"},
		{0, "SELECT INBOX"},
		{0, `STORE 1 +FLAGS (\Seen \Deleted)`},
		{1, "STATUS INBOX (MESSAGES UNSEEN RECENT SIZE)"},
		{1, "STATUS INBOX (MESSAGES UNSEEN RECENT UIDNEXT SIZE)"},
		{0, `STORE 1 -FLAGS (\Seen)`},
		{1, "STATUS INBOX (MESSAGES UNSEEN)"},
	},
	"addresses": {
		{0, appendCmd("", "From: <user (comment)@ (comment) example.org>\r\nTo: team: a@x.test, b@y.test;, other: ;\r\n"+
			"Cc: Juergen Mueller <juergen@example.de>\r\nBcc: <@route.test:routed@example.net>\r\n"+
			"Reply-To: Some One <@a.test,@b.test:x@y.test>, plain@y.test\r\nSubject: hi\r\n\r\nbody\r\n")},
		{0, "SELECT INBOX"},
		{0, "SEARCH FROM user@example.org"},
		{0, "SEARCH TO b@y.test"},
		{0, "SEARCH CC Mueller"},
		{0, "SEARCH FROM comment"},
		{0, "FETCH 1 (ENVELOPE)"},
	},
}

// TestCompareWithDovecot sends the same sessions to our server and to
// Dovecot and compares the answers line by line.
func TestCompareWithDovecot(t *testing.T) {
	t.Parallel()
	dv := startDovecot(t)
	for name, steps := range compareScenarios {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t)
			user := strings.ReplaceAll(name, "-", "") + "@example.com"
			ours := transcript(t, ts.addr, user, steps)
			theirs := transcript(t, dv.addr, user, steps)
			if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
				t.Errorf("differs from Dovecot\nours:\n%s\n\ndovecot:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
			}
		})
	}
}
