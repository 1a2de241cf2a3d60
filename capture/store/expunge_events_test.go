package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// An IMAP EXPUNGE goes through Expunge: it must publish the deleted events
// SSE, /messages/wait and IDLE read, to this store's subscribers and, on
// PostgreSQL, to another instance's.
func TestExpungePublishesEvents(t *testing.T) {
	backends(t, testExpungePublishesEvents)
}

func testExpungePublishesEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := testDSN(t)
	st := openTest(t, store.Options{DSN: dsn})
	var other *store.Store
	if onPostgres(t) {
		other = openTest(t, store.Options{DSN: dsn}) // a second instance on the same database
	}
	id, err := st.Ingest(ctx, store.Envelope{From: "x@y", To: []string{"bob@example.com"}}, msg("x@y", "bob@example.com", "", "gone", "body"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Folder(ctx, "bob@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateFlags(ctx, f.ID, []uint32{1}, store.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	here := st.Subscribe(ctx)
	var there <-chan store.Event
	if other != nil {
		there = other.Subscribe(ctx)
	}
	gone, err := st.Expunge(ctx, f.ID, nil)
	if err != nil || len(gone) != 1 || gone[0] != 1 {
		t.Fatalf("Expunge = %v, %v", gone, err)
	}
	check := func(who string, ch <-chan store.Event) {
		t.Helper()
		// The message left its only mailbox: one event for the message...
		if ev := nextEvent(t, ch, store.EventDeleted); ev.MessageID != id || len(ev.Mailboxes) != 1 || ev.Mailboxes[0] != "bob@example.com" {
			t.Errorf("%s: first deleted event %+v, want message %s from bob@example.com", who, ev, id)
		}
		// ...and one for the folder's entries, which IMAP IDLE reads.
		if ev := nextEvent(t, ch, store.EventDeleted); ev.FolderID != f.ID || ev.Mailbox != "bob@example.com" || len(ev.UIDs) != 1 || ev.UIDs[0] != 1 {
			t.Errorf("%s: second deleted event %+v, want UID 1 of folder %d", who, ev, f.ID)
		}
	}
	check("this instance", here)
	if there != nil {
		check("another instance", there)
	}
}
