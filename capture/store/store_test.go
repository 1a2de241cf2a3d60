package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// openTest opens a store for a test on a fresh database of the test's
// backend (see backends and testDSN), unless opts.DSN names one.
func openTest(t testing.TB, opts store.Options) *store.Store {
	t.Helper()
	if opts.DSN == "" {
		opts.DSN = testDSN(t)
	}
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		st.Close()
		storetest.CheckSQLite(t, opts.DSN)
	})
	return st
}

func msg(from, to, cc, subject, body string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nCc: %s\r\nSubject: %s\r\nMessage-ID: <m1@example.com>\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\n\r\n%s\r\n", from, to, cc, subject, body))
}

func TestIngestFilesOneCopyPerRecipient(t *testing.T) {
	backends(t, testIngestFilesOneCopyPerRecipient)
}

func testIngestFilesOneCopyPerRecipient(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	raw := msg("Alice <alice@example.com>", "Bob@Example.COM", "carol@example.com", "Hello", "Hi there")
	id, err := st.Ingest(ctx, store.Envelope{From: "alice@example.com", To: []string{"Bob@Example.COM", "carol@example.com", "dave@example.com", "bob@example.com"}}, raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Raw(ctx, id)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("raw = %q, %v", got, err)
	}
	m, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Mailboxes) != 3 || m.Subject != "Hello" || m.From.Address != "alice@example.com" || m.From.Name != "Alice" || m.MessageID != "m1@example.com" {
		t.Fatalf("summary = %+v", m)
	}
	if m.Date.Format(time.RFC3339) != "2026-01-02T03:04:05Z" {
		t.Fatalf("date = %v", m.Date)
	}
	mbs, err := st.Mailboxes(ctx)
	if err != nil || len(mbs) != 3 {
		t.Fatalf("mailboxes = %+v, %v", mbs, err)
	}
	for _, mb := range mbs {
		if mb.Total != 1 || mb.Unread != 1 {
			t.Fatalf("mailbox %+v", mb)
		}
	}
	if err := st.SetSeen(ctx, id, "BOB@example.com", true); err != nil {
		t.Fatal(err)
	}
	list, total, err := st.Search(ctx, store.Query{Mailbox: "bob@example.com", Folder: store.InboxName})
	if err != nil || total != 1 || !list[0].Seen {
		t.Fatalf("bob's list = %+v %d %v", list, total, err)
	}
	all, _, _ := st.Search(ctx, store.Query{})
	if all[0].Seen {
		t.Fatal("across all mail, seen must need every copy seen")
	}
	if err := st.DeleteMailbox(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	m, err = st.Get(ctx, id)
	if err != nil || len(m.Mailboxes) != 2 {
		t.Fatalf("after deleting bob: %+v %v", m, err)
	}
	if err := st.DeleteMessage(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted = %v", err)
	}
	if _, err := st.Raw(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("raw deleted = %v", err)
	}
}

func TestSearchFilters(t *testing.T) { backends(t, testSearchFilters) }

func testSearchFilters(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	send := func(to, subject, body string) string {
		id, err := st.Ingest(ctx, store.Envelope{From: "x@sender.test", To: []string{to}}, msg("Sender <x@sender.test>", to, "", subject, body))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	send("a@example.com", "Welcome aboard", "your code is 1234")
	send("b@example.com", "Reset password", "click here 100%")
	send("c@other.test", "Invoice", "ÜBER straße")
	cases := []struct {
		q    store.Query
		want int
	}{
		{store.Query{}, 3},
		{store.Query{To: "EXAMPLE.com"}, 2},
		{store.Query{Subject: "reset"}, 1},
		{store.Query{Text: "1234"}, 1},
		{store.Query{Text: "100%"}, 1},
		{store.Query{Text: "%"}, 1},
		{store.Query{Text: "über"}, 1},
		{store.Query{From: "sender"}, 3},
		{store.Query{Mailbox: "A@example.com"}, 1},
		{store.Query{Since: time.Now().Add(time.Hour)}, 0},
		{store.Query{Before: time.Now().Add(time.Hour)}, 3},
	}
	for _, c := range cases {
		list, total, err := st.Search(ctx, c.q)
		if err != nil || total != c.want || len(list) != c.want {
			t.Errorf("%+v: got %d (%d listed), %v; want %d", c.q, total, len(list), err, c.want)
		}
	}
	list, total, _ := st.Search(ctx, store.Query{Limit: 1, Offset: 1})
	if total != 3 || len(list) != 1 || list[0].Subject != "Reset password" {
		t.Fatalf("paging: %d %+v", total, list)
	}
}

func TestConcurrentIngestLosesNothing(t *testing.T) { backends(t, testConcurrentIngestLosesNothing) }

func testConcurrentIngestLosesNothing(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{fmt.Sprintf("u%d@example.com", w%5)}}, msg("a@b", "x@y", "", fmt.Sprintf("m %d %d", w, i), "body"))
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, total, _ := st.Search(ctx, store.Query{})
	if total != 400 {
		t.Fatalf("stored %d, want 400", total)
	}
	f, err := st.Folder(ctx, "u0@example.com", store.InboxName)
	if err != nil || f.Total != 80 || f.UIDNext != 81 {
		t.Fatalf("folder %+v %v", f, err)
	}
	es, _ := st.Entries(ctx, f.ID)
	for i, e := range es {
		if e.UID != uint32(i+1) {
			t.Fatalf("uid %d at %d", e.UID, i)
		}
	}
}

func TestPersistsAcrossReopen(t *testing.T) { backends(t, testPersistsAcrossReopen) }

func testPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := testDSN(t)
	st, err := store.Open(ctx, store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{"z@example.com"}}, msg("a@b", "z@example.com", "", "keep", "x"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st2 := openTest(t, store.Options{DSN: path})
	if _, err := st2.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestTemporaryStoreRemovedOnClose(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	st, err := store.Open(context.Background(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(os.Getenv("TMPDIR"))
	if len(ents) != 1 {
		t.Fatalf("temp dir entries %v", ents)
	}
	st.Close()
	ents, _ = os.ReadDir(os.Getenv("TMPDIR"))
	if len(ents) != 0 {
		t.Fatalf("left behind %v", ents)
	}
}

func TestRetentionMaxMessages(t *testing.T) { backends(t, testRetentionMaxMessages) }

func testRetentionMaxMessages(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{MaxMessages: 3})
	for i := 0; i < 6; i++ {
		if _, err := st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{"r@example.com"}}, msg("a@b", "r@example.com", "", fmt.Sprint("n", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	list, total, _ := st.Search(ctx, store.Query{})
	if total != 3 || list[0].Subject != "n5" || list[2].Subject != "n3" {
		t.Fatalf("after prune: %d %+v", total, list)
	}
}

func TestRetentionMaxAgePrunesOnItsOwn(t *testing.T) { backends(t, testRetentionMaxAgePrunesOnItsOwn) }

// testRetentionMaxAgePrunesOnItsOwn: with a short MaxAge, mail goes soon
// after it expires, without new mail or a call to Prune (it used to wait
// for a once-a-minute tick), and a deleted event says so.
func testRetentionMaxAgePrunesOnItsOwn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st := openTest(t, store.Options{MaxAge: time.Second})
	ch := st.Subscribe(ctx)
	id, err := st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{"r@example.com"}}, msg("a@b", "r@example.com", "", "old", "x"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-ch:
			if ev.Kind == store.EventDeleted && ev.MessageID == id {
				if _, n, _ := st.Search(ctx, store.Query{}); n != 0 {
					t.Fatalf("%d messages left after the prune", n)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("a message past MaxAge was not pruned within 15 s")
		}
	}
}

func TestEventsOnIngest(t *testing.T) { backends(t, testEventsOnIngest) }

func testEventsOnIngest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := openTest(t, store.Options{})
	ch := st.Subscribe(ctx)
	id, err := st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{"e@example.com"}}, msg("a@b", "e@example.com", "", "ev", "x"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-ch:
			if ev.Kind == store.EventMessage && ev.MessageID == id && ev.Mailboxes[0] == "e@example.com" {
				return
			}
		case <-ctx.Done():
			t.Fatal("no event")
		}
	}
}

func TestSearchOneMessageByID(t *testing.T) { backends(t, testSearchOneMessageByID) }

func testSearchOneMessageByID(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	a, _ := st.Ingest(ctx, store.Envelope{From: "x@s.test", To: []string{"ann@example.com"}}, msg("x@s.test", "ann@example.com", "", "first", "b"))
	b, _ := st.Ingest(ctx, store.Envelope{From: "x@s.test", To: []string{"ben@example.com"}}, msg("x@s.test", "ben@example.com", "", "second", "b"))
	for _, c := range []struct {
		q    store.Query
		want int
	}{
		{store.Query{ID: a, To: "ann@"}, 1},
		{store.Query{ID: a, To: "ben@"}, 0},
		{store.Query{ID: b, Subject: "SECOND"}, 1},
		{store.Query{ID: b, Subject: "first"}, 0},
		{store.Query{ID: "nope"}, 0},
	} {
		_, total, err := st.Search(ctx, c.q)
		if err != nil || total != c.want {
			t.Errorf("%+v: %d, %v; want %d", c.q, total, err, c.want)
		}
	}
}

func TestDeleteAllLeavesNoMailboxes(t *testing.T) { backends(t, testDeleteAllLeavesNoMailboxes) }

// testDeleteAllLeavesNoMailboxes: after DeleteAll no mailbox is listed, and
// a mailbox that gets mail again at once has a new UIDVALIDITY (its UIDs
// start over, so an IMAP client must not mistake them for the old ones).
func testDeleteAllLeavesNoMailboxes(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	env := store.Envelope{From: "a@x.test", To: []string{"b@x.test", "c@x.test"}}
	if _, err := st.Ingest(ctx, env, msg("a@x.test", "b@x.test", "c@x.test", "One", "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateFolder(ctx, "b@x.test", "Archive", ""); err != nil {
		t.Fatal(err)
	}
	before, err := st.Folder(ctx, "b@x.test", store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if mbs, err := st.Mailboxes(ctx); err != nil || len(mbs) != 0 {
		t.Fatalf("mailboxes after DeleteAll = %+v, %v", mbs, err)
	}
	if _, err := st.Ingest(ctx, env, msg("a@x.test", "b@x.test", "", "Two", "y")); err != nil {
		t.Fatal(err)
	}
	after, err := st.Folder(ctx, "b@x.test", store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	if after.UIDValidity == before.UIDValidity {
		t.Fatalf("INBOX re-created with its old UIDVALIDITY %d", after.UIDValidity)
	}
	if fs, _ := st.Folders(ctx, "b@x.test"); len(fs) != 1 {
		t.Fatalf("folders after DeleteAll and new mail = %+v", fs)
	}
}
