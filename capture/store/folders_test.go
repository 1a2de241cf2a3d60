package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func ingestN(t *testing.T, st *store.Store, to string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id, err := st.Ingest(context.Background(), store.Envelope{From: "a@b", To: []string{to}}, msg("a@b", to, "", fmt.Sprint("m", i), "body"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func folderNames(t *testing.T, st *store.Store, mb string) []string {
	t.Helper()
	fs, err := st.Folders(context.Background(), mb)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func TestFolderCreateRenameDelete(t *testing.T) { backends(t, testFolderCreateRenameDelete) }

func testFolderCreateRenameDelete(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const mb = "f@example.com"
	if _, err := st.Folder(ctx, mb, store.InboxName); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"A", "A/B", "A/B/C", "Trash"} {
		if _, err := st.CreateFolder(ctx, mb, n, ""); err != nil {
			t.Fatal(n, err)
		}
	}
	if _, err := st.CreateFolder(ctx, mb, "A", ""); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	for _, bad := range []string{"", "/x", "x/", "a//b", "a*"} {
		if _, err := st.CreateFolder(ctx, mb, bad, ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	tr, _ := st.Folder(ctx, mb, "Trash")
	if err := st.RenameFolder(ctx, mb, "A", "Trash"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("rename onto existing: %v", err)
	}
	if err := st.RenameFolder(ctx, mb, "A", "A/B/D"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("rename below itself: %v", err)
	}
	if err := st.RenameFolder(ctx, mb, "Nope", "X"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rename missing: %v", err)
	}
	if err := st.RenameFolder(ctx, mb, "A", "Z"); err != nil {
		t.Fatal(err)
	}
	if got, want := folderNames(t, st, mb), []string{"INBOX", "Trash", "Z", "Z/B", "Z/B/C"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after rename: %v", got)
	}
	if err := st.DeleteFolder(ctx, mb, store.InboxName); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("delete inbox: %v", err)
	}
	if err := st.DeleteFolder(ctx, mb, "Z"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteFolder(ctx, mb, "Z"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if got, want := folderNames(t, st, mb), []string{"INBOX", "Trash", "Z/B", "Z/B/C"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete: %v", got)
	}
	if err := st.SetSubscribed(ctx, mb, "Trash", true); err != nil {
		t.Fatal(err)
	}
	if f, _ := st.Folder(ctx, mb, "Trash"); !f.Subscribed || f.ID != tr.ID {
		t.Fatalf("trash %+v", f)
	}
	if err := st.SetSubscribed(ctx, mb, "Trash", false); err != nil {
		t.Fatal(err)
	}
	if f, _ := st.Folder(ctx, mb, "Trash"); f.Subscribed || f.ID != tr.ID {
		t.Fatalf("trash %+v", f)
	}
	// A re-created folder gets a new UIDValidity.
	if _, err := st.CreateFolder(ctx, mb, "Z", `\Archive`); err != nil {
		t.Fatal(err)
	}
	z, _ := st.Folder(ctx, mb, "Z")
	if z.SpecialUse != `\Archive` || z.UIDValidity <= tr.UIDValidity {
		t.Fatalf("re-created %+v (trash %d)", z, tr.UIDValidity)
	}
}

func TestRenameInboxMovesMail(t *testing.T) { backends(t, testRenameInboxMovesMail) }

func testRenameInboxMovesMail(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const mb = "r@example.com"
	ingestN(t, st, mb, 3)
	if _, err := st.CreateFolder(ctx, mb, "INBOX/Sub", ""); err != nil {
		t.Fatal(err)
	}
	inbox, _ := st.Folder(ctx, mb, store.InboxName)
	if err := st.RenameFolder(ctx, mb, store.InboxName, "Old"); err != nil {
		t.Fatal(err)
	}
	if got, want := folderNames(t, st, mb), []string{"INBOX", "INBOX/Sub", "Old"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("folders %v", got)
	}
	in2, _ := st.Folder(ctx, mb, store.InboxName)
	old, _ := st.Folder(ctx, mb, "Old")
	if in2.ID != inbox.ID || in2.Total != 0 || old.Total != 3 || old.UIDNext != 4 {
		t.Fatalf("inbox %+v old %+v", in2, old)
	}
	list, total, _ := st.Search(ctx, store.Query{Mailbox: mb, Folder: "Old"})
	if total != 3 || len(list) != 3 {
		t.Fatalf("search Old: %d", total)
	}
	// New mail still goes to INBOX, with UIDs that keep growing.
	ingestN(t, st, mb, 1)
	es, _ := st.Entries(ctx, inbox.ID)
	if len(es) != 1 || es[0].UID != 4 {
		t.Fatalf("inbox entries %+v", es)
	}
}

func TestFlagsCopyMoveExpunge(t *testing.T) { backends(t, testFlagsCopyMoveExpunge) }

func testFlagsCopyMoveExpunge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st := openTest(t, store.Options{})
	const mb = "x@example.com"
	ids := ingestN(t, st, mb, 4)
	inbox, _ := st.Folder(ctx, mb, store.InboxName)
	arch, err := st.CreateFolder(ctx, mb, "Archive", "")
	if err != nil {
		t.Fatal(err)
	}
	events := st.Subscribe(ctx)

	es, err := st.UpdateFlags(ctx, inbox.ID, []uint32{1, 2, 99}, store.FlagsAdd, []string{`\seen`, "$Label", `\Flagged`})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || !reflect.DeepEqual(es[0].Flags, []string{"$Label", `\Flagged`, `\Seen`}) {
		t.Fatalf("after add: %+v", es)
	}
	ev := <-events
	if ev.Kind != store.EventFlags || ev.FolderID != inbox.ID || !reflect.DeepEqual(ev.UIDs, []uint32{1, 2}) {
		t.Fatalf("flags event %+v", ev)
	}
	// Keywords match without case; the spelling stays.
	es, _ = st.UpdateFlags(ctx, inbox.ID, []uint32{1}, store.FlagsRemove, []string{"$label"})
	if !reflect.DeepEqual(es[0].Flags, []string{`\Flagged`, `\Seen`}) {
		t.Fatalf("after remove: %+v", es[0].Flags)
	}
	<-events
	es, _ = st.UpdateFlags(ctx, inbox.ID, []uint32{2}, store.FlagsReplace, []string{`\Deleted`})
	if !reflect.DeepEqual(es[0].Flags, []string{`\Deleted`}) {
		t.Fatalf("after replace: %+v", es[0].Flags)
	}
	<-events
	// Seen in IMAP is REST's seen for this mailbox.
	list, _, _ := st.Search(ctx, store.Query{Mailbox: mb, Folder: store.InboxName})
	seen := map[string]bool{}
	for _, m := range list {
		seen[m.ID] = m.Seen
	}
	if !seen[ids[0]] || seen[ids[1]] || seen[ids[2]] {
		t.Fatalf("seen %v", seen)
	}
	// An unchanged store publishes nothing.
	if _, err := st.UpdateFlags(ctx, inbox.ID, []uint32{2}, store.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}

	src, dst, err := st.CopyEntries(ctx, inbox.ID, []uint32{1, 3}, arch.ID)
	if err != nil || !reflect.DeepEqual(src, []uint32{1, 3}) || !reflect.DeepEqual(dst, []uint32{1, 2}) {
		t.Fatalf("copy %v %v %v", src, dst, err)
	}
	ev = <-events
	if ev.Kind != store.EventEntry || ev.FolderID != arch.ID || !reflect.DeepEqual(ev.UIDs, []uint32{1, 2}) {
		t.Fatalf("copy event %+v", ev)
	}
	ae, _ := st.Entries(ctx, arch.ID)
	if len(ae) != 2 || !ae[0].Seen() || ae[0].MessageID != ids[0] {
		t.Fatalf("archive %+v", ae)
	}

	src, dst, err = st.MoveEntries(ctx, inbox.ID, []uint32{3, 4}, arch.ID)
	if err != nil || !reflect.DeepEqual(src, []uint32{3, 4}) || !reflect.DeepEqual(dst, []uint32{3, 4}) {
		t.Fatalf("move %v %v %v", src, dst, err)
	}
	ev = <-events
	if ev.Kind != store.EventDeleted || ev.FolderID != inbox.ID || !reflect.DeepEqual(ev.UIDs, []uint32{3, 4}) || ev.MessageID != "" {
		t.Fatalf("move event %+v", ev)
	}
	<-events
	// Moving into the same folder gives the entry a new UID (RFC 6851).
	before, _ := st.Entries(ctx, arch.ID)
	src, dst, err = st.MoveEntries(ctx, arch.ID, []uint32{before[0].UID}, arch.ID)
	if err != nil || len(dst) != 1 || dst[0] <= before[len(before)-1].UID {
		t.Fatalf("move onto itself %v %v %v", src, dst, err)
	}
	<-events
	<-events
	if after, _ := st.Entries(ctx, arch.ID); len(after) != len(before) || after[len(after)-1].UID != dst[0] {
		t.Fatalf("after move onto itself %+v", after)
	}
	list, _, _ = st.Search(ctx, store.Query{Mailbox: mb, Folder: "Archive"})
	if len(list) != 3 {
		t.Fatalf("archive holds %d messages", len(list))
	}

	// Expunge only removes \Deleted, and only the UIDs asked for.
	if _, err := st.UpdateFlags(ctx, inbox.ID, []uint32{1}, store.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	<-events
	gone, err := st.Expunge(ctx, inbox.ID, []uint32{2})
	if err != nil || !reflect.DeepEqual(gone, []uint32{2}) {
		t.Fatalf("uid expunge %v %v", gone, err)
	}
	gone, err = st.Expunge(ctx, inbox.ID, nil)
	if err != nil || !reflect.DeepEqual(gone, []uint32{1}) {
		t.Fatalf("expunge %v %v", gone, err)
	}
	if es, _ := st.Entries(ctx, inbox.ID); len(es) != 0 {
		t.Fatalf("inbox left %+v", es)
	}
	// Message 2 was only in INBOX: it is gone; message 1 lives on in Archive.
	if _, err := st.Get(ctx, ids[1]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expunged message: %v", err)
	}
	if m, err := st.Get(ctx, ids[0]); err != nil || len(m.Mailboxes) != 1 {
		t.Fatalf("copied message: %+v %v", m, err)
	}
	// Deleting the folder drops the last copies.
	if err := st.DeleteFolder(ctx, mb, "Archive"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after folder delete: %v", err)
	}
	if _, err := st.UpdateFlags(ctx, arch.ID, []uint32{1}, store.FlagsAdd, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("flags on deleted folder: %v", err)
	}
}

func TestEntryFlagsAndEntriesFrom(t *testing.T) { backends(t, testEntryFlagsAndEntriesFrom) }

func testEntryFlagsAndEntriesFrom(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const mb = "e@example.com"
	ids := ingestN(t, st, mb, 3)
	inbox, _ := st.Folder(ctx, mb, store.InboxName)
	if _, err := st.UpdateFlags(ctx, inbox.ID, []uint32{2}, store.FlagsAdd, []string{`\Seen`, "$X"}); err != nil {
		t.Fatal(err)
	}
	fl, err := st.EntryFlags(ctx, inbox.ID)
	if err != nil || len(fl) != 3 || fl[1].UID != 2 || !reflect.DeepEqual(fl[1].Flags, []string{"$X", `\Seen`}) || len(fl[0].Flags) != 0 {
		t.Fatalf("entry flags %+v %v", fl, err)
	}
	es, err := st.EntriesFrom(ctx, inbox.ID, 2)
	if err != nil || len(es) != 2 || es[0].UID != 2 || es[1].MessageID != ids[2] || es[1].Size == 0 {
		t.Fatalf("entries from 2: %+v %v", es, err)
	}
	if es, _ := st.EntriesFrom(ctx, inbox.ID, 4); len(es) != 0 {
		t.Fatalf("entries from 4: %+v", es)
	}
}
