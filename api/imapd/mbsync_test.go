package imapd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestMbsync syncs a mailbox into a Maildir with isync's mbsync, both ways:
// mail and folders come down; a flag set and a message added locally go up.
func TestMbsync(t *testing.T) {
	t.Parallel()
	bin := need.Command(t, need.Mbsync, "mbsync")
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("Hello Bob", "first"))
	ts.ingest(t, "bob@example.com", multipartMsg)
	ctx := context.Background()
	if _, err := ts.st.CreateFolder(ctx, "bob@example.com", "Archive", ""); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ts.addr)
	conf := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`IMAPAccount sandbox
Host %s
Port %s
User bob@example.com
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account sandbox

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sandbox
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`, host, port, maildir, maildir)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, bin, "-c", conf, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
	}
	run()

	files := func(folder string) []string {
		t.Helper()
		var out []string
		for _, sub := range []string{"cur", "new"} {
			ents, _ := os.ReadDir(filepath.Join(maildir, folder, sub))
			for _, e := range ents {
				out = append(out, filepath.Join(maildir, folder, sub, e.Name()))
			}
		}
		return out
	}
	inbox := files("INBOX")
	if len(inbox) != 2 {
		t.Fatalf("INBOX in Maildir: %v", inbox)
	}
	// mbsync stores LF line ends and adds its X-TUID header; the rest is
	// the captured bytes.
	tuid := regexp.MustCompile(`(?m)^X-TUID: .*\n`)
	var found bool
	for _, f := range inbox {
		b, _ := os.ReadFile(f)
		got := strings.ReplaceAll(tuid.ReplaceAllString(string(b), ""), "\n", "\r\n")
		if got == multipartMsg {
			found = true
		}
	}
	if !found {
		t.Fatal("multipart message not synced byte for byte")
	}
	for _, f := range []string{"Archive", "Trash", "Sent", "Drafts"} {
		if _, err := os.Stat(filepath.Join(maildir, f, "cur")); err != nil {
			ents, _ := os.ReadDir(maildir)
			t.Fatalf("folder %s not created locally: %v %v", f, err, ents)
		}
	}

	// Mark one seen locally, and add a draft locally.
	seenFile := inbox[0]
	base := filepath.Base(seenFile)
	if !strings.Contains(base, ":2,") {
		base += ":2,"
	}
	if err := os.Rename(seenFile, filepath.Join(maildir, "INBOX", "cur", base+"S")); err != nil {
		t.Fatal(err)
	}
	draft := "From: bob@example.com\r\nSubject: local draft\r\n\r\nwritten offline\r\n"
	if err := os.WriteFile(filepath.Join(maildir, "Drafts", "cur", "1700000000.1.local:2,D"), []byte(draft), 0o600); err != nil {
		t.Fatal(err)
	}
	run()

	list, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "bob@example.com", Folder: "INBOX"})
	seen := 0
	for _, m := range list {
		if m.Seen {
			seen++
		}
	}
	if len(list) != 2 || seen != 1 {
		t.Fatalf("INBOX after sync up: %d messages, %d seen", len(list), seen)
	}
	drafts, _, _ := ts.st.Search(ctx, store.Query{Mailbox: "bob@example.com", Folder: "Drafts"})
	if len(drafts) != 1 || drafts[0].Subject != "local draft" {
		t.Fatalf("Drafts after sync up: %+v", drafts)
	}
	// A second sync with nothing new changes nothing.
	run()
	if got := files("INBOX"); len(got) != 2 {
		t.Fatalf("INBOX after resync: %v", got)
	}
}
