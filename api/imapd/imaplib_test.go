package imapd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestImaplibSession drives Python's imaplib through a whole session and
// then checks that the store (what REST shows) agrees.
func TestImaplibSession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	first := textMsg("Hello Bob", "First message body")
	ts.ingest(t, "bob@example.com", first)
	ts.ingest(t, "Bob@Example.com", multipartMsg)
	ts.ingest(t, "bob@example.com", textMsg("Third", "needle in a haystack"))
	ts.ingest(t, "carol@example.com", textMsg("Not for Bob", "x"))

	out := runPython(t, ts.addr, `
import imaplib, sys, re
FIRST = `+pyBytes(first)+`
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
typ, caps = M.capability()
caps = caps[0].decode()
assert "IMAP4rev1" in caps.split() and "AUTH=PLAIN" in caps.split(), caps
assert "LOGINDISABLED" not in caps, caps
assert M.login("BOB@example.com", "any password")[0] == "OK"
caps = M.capability()[1][0].decode().split()
for c in ["IMAP4rev1", "IDLE", "MOVE", "UIDPLUS", "NAMESPACE", "LITERAL-", "SPECIAL-USE", "LIST-STATUS", "APPENDLIMIT=33554432"]:
    assert c in caps, (c, caps)

typ, data = M.list()
names = [l.decode() for l in data]
assert any(l.endswith('"/" INBOX') for l in names), names
assert any("\\Trash" in l and "Trash" in l for l in names), names
assert any("\\Sent" in l for l in names), names

typ, data = M.select("INBOX")
assert typ == "OK" and data[0] == b"3", (typ, data)

# exact bytes, without marking seen
typ, data = M.fetch("1", "(BODY.PEEK[])")
assert data[0][1] == FIRST, data[0][1]
typ, data = M.fetch("1", "(FLAGS)")
assert b"\\Seen" not in data[0], data
typ, data = M.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE ENVELOPE)")
assert len([d for d in data if isinstance(d, bytes) or isinstance(d, tuple)]) == 3, data
assert b'"Hello Bob"' in data[0] and b'"alice" "example.com"' in data[0], data[0]
assert (b"RFC822.SIZE %d" % len(FIRST)) in data[0], data[0]

# body structure of a multipart with an attachment
typ, data = M.fetch("2", "(BODYSTRUCTURE)")
bs = data[0].decode()
assert '("text" "plain" ("charset" "utf-8")' in bs, bs
assert '"application" "pdf" ("name" "report.pdf")' in bs and '"base64"' in bs, bs
assert '("attachment" ("filename" "report.pdf"))' in bs and '"mixed"' in bs, bs
typ, data = M.fetch("2", "(BODY.PEEK[2] BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.10>)")
parts = {d[0].split(b" ")[-2] if False else d[0]: d[1] for d in data if isinstance(d, tuple)}
vals = [d[1] for d in data if isinstance(d, tuple)]
assert vals[0] == b"JVBERi0xLjQKJcfsj6IK", vals
assert vals[1].startswith(b"Content-Type: text/plain"), vals
assert vals[2] == b"Subject: Report\r\n\r\n", vals
assert vals[3] == b"From: Alic", vals

# reading without PEEK sets \Seen
typ, data = M.fetch("1", "(BODY[TEXT])")
assert b"FLAGS" in data[0][0] and b"\\Seen" in data[0][0], data
assert data[0][1] == b"First message body\r\n", data

# STORE and SEARCH
typ, data = M.store("2", "+FLAGS", "(\\Flagged $Important)")
assert b"\\Flagged" in data[0] and b"$Important" in data[0], data
assert M.search(None, "FLAGGED")[1] == [b"2"]
assert M.search(None, "KEYWORD", "$important")[1] == [b"2"]
assert M.search(None, "UNSEEN")[1] == [b"2 3"], M.search(None, "UNSEEN")
assert M.search(None, "SEEN")[1] == [b"1"]
assert M.search(None, "SUBJECT", "hello")[1] == [b"1"]
assert M.search(None, "FROM", "alice")[1] == [b"1 2 3"]
assert M.search(None, "BODY", "NEEDLE")[1] == [b"3"]
assert M.search(None, "TEXT", "report")[1] == [b"2"]
assert M.search(None, "LARGER", "300")[1] == [b"2"]
assert M.search(None, "SENTSINCE", "01-Jan-2026", "SENTBEFORE", "03-Jan-2026")[1] == [b"1 2 3"]
assert M.search(None, "OR", "FLAGGED", "SEEN")[1] == [b"1 2"]
assert M.search(None, "NOT", "SEEN")[1] == [b"2 3"]
assert M.uid("SEARCH", "UID", "2:*")[1] == [b"2 3"]
assert M.search(None, "SINCE", "01-Jan-2000")[1] == [b"1 2 3"]

# folders
assert M.create("Work/Projects")[0] == "OK"
assert M.create("Work")[0] == "NO"
assert M.rename("Work", "Jobs")[0] == "OK"
names = [l.decode() for l in M.list("\"\"", "Jobs*")[1]]
assert any(l.endswith('"/" "Jobs/Projects"') for l in names), names
assert M.status("Jobs/Projects", "(MESSAGES UIDNEXT UNSEEN)")[0] == "OK"
assert M.select("Nope")[0] == "NO"
M.select("INBOX")

# COPY with COPYUID, MOVE, EXPUNGE
typ, data = M.uid("COPY", "1", "Jobs/Projects")
assert typ == "OK", (typ, data)
code = M.response("COPYUID")[1][0].decode()
assert re.fullmatch(r"\d+ 1 1", code), code
typ, data = M.uid("MOVE", "2", "Jobs")
assert typ == "OK", (typ, data)
code = M.response("COPYUID")[1][0].decode()
assert re.fullmatch(r"\d+ 2 1", code), code
exp = M.response("EXPUNGE")[1]
assert exp == [b"2"], exp
assert M.copy("1", "Nowhere")[0] == "NO"
assert "TRYCREATE" in str(M.response("TRYCREATE"))
M.store("1", "+FLAGS", "\\Deleted")
typ, data = M.expunge()
assert data == [b"1"], data
typ, data = M.select("INBOX")
assert data == [b"1"], data

# APPEND into any folder, with flags
msg = b"From: me@example.com\r\nSubject: appended\r\n\r\nhi\r\n"
typ, data = M.append("Drafts", "(\\Draft \\Seen)", None, msg)
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = M.status("Drafts", "(MESSAGES UNSEEN)")
assert b"MESSAGES 1" in data[0] and b"UNSEEN 0" in data[0], data
assert M.append("Nowhere", None, None, msg)[0] == "NO"

assert M.delete("Jobs/Projects")[0] == "OK"
assert M.delete("INBOX")[0] == "NO"
M.logout()
print("ok")
`)
	if !strings.Contains(out, "ok") {
		t.Fatal(out)
	}

	// The store shows what IMAP did.
	ctx := context.Background()
	inbox, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "bob@example.com", Folder: "INBOX"})
	if len(inbox) != 1 || inbox[0].Subject != "Third" || inbox[0].Seen {
		t.Fatalf("INBOX %+v", inbox)
	}
	jobs, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "bob@example.com", Folder: "Jobs"})
	if len(jobs) != 1 || jobs[0].Subject != "Report" {
		t.Fatalf("Jobs %+v", jobs)
	}
	drafts, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "bob@example.com", Folder: "Drafts"})
	if len(drafts) != 1 || !drafts[0].Seen {
		t.Fatalf("Drafts %+v", drafts)
	}
	// "Hello Bob" was expunged from INBOX and its copy deleted with its folder.
	if all, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "bob@example.com", Subject: "Hello Bob"}); len(all) != 0 {
		t.Fatalf("expunged message still listed: %+v", all)
	}
	if carol, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "carol@example.com"}); len(carol) != 1 {
		t.Fatalf("carol %+v", carol)
	}
}

// pyBytes renders s as a Python bytes literal.
func pyBytes(s string) string {
	var b strings.Builder
	b.WriteString(`b"`)
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20 || c >= 0x7f:
			b.WriteString(`\x`)
			b.WriteString(strings.ToLower(strings.TrimPrefix(string("0123456789ABCDEF"[c>>4])+string("0123456789ABCDEF"[c&15]), "")))
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestBareLFMessageIsCRLFText: mail stored with bare LFs (an SMTP sender
// or a REST upload that used them) is sent as CRLF text, whole and in
// parts, and RFC822.SIZE is the length of the BODY[] the client gets.
func TestBareLFMessageIsCRLFText(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "lf@example.com", "From: a@example.com\nTo: lf@example.com\nSubject: bare LF\n\nline one\n.dot\nline three\n")
	runPython(t, ts.addr, `
import imaplib, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login("lf@example.com", "x")
M.select("INBOX")
want = b"From: a@example.com\r\nTo: lf@example.com\r\nSubject: bare LF\r\n\r\nline one\r\n.dot\r\nline three\r\n"
typ, data = M.fetch("1", "(RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT])")
assert typ == "OK", data
assert data[0][1] == want, data[0][1]
assert (b"RFC822.SIZE %d " % len(want)) in data[0][0], data[0][0]
assert data[1][1] == b"line one\r\n.dot\r\nline three\r\n", data[1]
M.logout()
`)
}

// TestAppendCapUnder4KiB: a message cap under 4096 bytes (the least the
// library may announce) is still the cap: a larger APPEND gets NO [TOOBIG]
// and stores nothing, a smaller one goes in.
func TestAppendCapUnder4KiB(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *imapd.Options) { o.MaxLiteralBytes = 2048 })
	runPython(t, ts.addr, `
import imaplib, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login("cap@example.com", "x")
try:
    typ, data = M.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"a" * 3000 + b"\r\n")
except M.error as e:
    typ, data = "NO", [str(e).encode()]
assert typ == "NO" and b"TOOBIG" in data[0], (typ, data)
typ, data = M.append("INBOX", None, None, b"Subject: small\r\n\r\nx\r\n")
assert typ == "OK", (typ, data)
typ, data = M.select("INBOX")
assert data == [b"1"], data
M.logout()
`)
}
