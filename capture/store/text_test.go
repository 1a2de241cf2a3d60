package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Bytes that PostgreSQL's text cannot hold (NUL, invalid UTF-8) are stored
// and looked up without errors on every backend.
func TestOddBytesInTextValues(t *testing.T) { backends(t, testOddBytesInTextValues) }

func testOddBytesInTextValues(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	raw := []byte("From: Al\xffice <al@example.com>\r\nTo: bob@example.com\r\nSubject: caf\xe9 \x00 menu\r\n\r\nbody \xff\xfe with \x00 NUL\r\n")
	id, err := st.Ingest(ctx, store.Envelope{From: "odd\xff@example.com", To: []string{"bob@example.com", "b\xffad\x00@example.com"}}, raw)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if got, err := st.Raw(ctx, id); err != nil || string(got) != string(raw) {
		t.Fatalf("raw changed: %q %v", got, err)
	}
	m, err := st.Get(ctx, id)
	if err != nil || len(m.Mailboxes) != 2 {
		t.Fatalf("get: %+v %v", m, err)
	}
	for _, mb := range m.Mailboxes {
		if list, total, err := st.Search(ctx, store.Query{Mailbox: mb}); err != nil || total != 1 || len(list) != 1 {
			t.Fatalf("search mailbox %q: %d %v", mb, total, err)
		}
		if _, err := st.Folder(ctx, mb, store.InboxName); err != nil {
			t.Fatalf("folder of %q: %v", mb, err)
		}
	}
	for _, q := range []store.Query{{Subject: "caf\xe9"}, {Text: "\x00"}, {From: "\xff"}, {Mailbox: "\x00\xff", Folder: "\x00"}} {
		if _, _, err := st.Search(ctx, q); err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
	}
	for _, bad := range []string{"\x00\xff'\"", "\xff"} {
		if _, err := st.Get(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get %q: %v", bad, err)
		}
		if _, err := st.Raw(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("raw %q: %v", bad, err)
		}
		if _, err := st.Folders(ctx, bad); err != nil {
			t.Fatalf("folders %q: %v", bad, err)
		}
		if err := st.DeleteMailbox(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete mailbox %q: %v", bad, err)
		}
	}
	if _, err := st.CreateFolder(ctx, "bob@example.com", "Caf\xe9", ""); err != nil && !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("create folder with a bad name: %v", err)
	}
}
