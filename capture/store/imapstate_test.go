package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func TestSubscriptionsAreNames(t *testing.T) { backends(t, testSubscriptionsAreNames) }

func testSubscriptionsAreNames(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const mb = "sub@example.test"
	if _, err := st.Folder(ctx, mb, store.InboxName); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateFolder(ctx, mb, "A", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateFolder(ctx, mb, "A/B", ""); err != nil {
		t.Fatal(err)
	}
	subs := func() []string {
		t.Helper()
		l, err := st.Subscriptions(ctx, mb)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	// Creating does not subscribe; INBOX starts subscribed.
	if got := subs(); !reflect.DeepEqual(got, []string{"INBOX"}) {
		t.Fatalf("after create: %v", got)
	}
	for _, n := range []string{"A/B", "Ghost"} {
		if err := st.SetSubscribed(ctx, mb, n, true); err != nil {
			t.Fatalf("subscribe %s: %v", n, err)
		}
	}
	if err := st.SetSubscribed(ctx, mb, "bad//name", true); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("subscribe bad name: %v", err)
	}
	// A rename carries the subtree's subscriptions; a delete keeps them.
	if err := st.RenameFolder(ctx, mb, "A", "C"); err != nil {
		t.Fatal(err)
	}
	if got := subs(); !reflect.DeepEqual(got, []string{"C/B", "Ghost", "INBOX"}) {
		t.Fatalf("after rename: %v", got)
	}
	if f, _ := st.Folder(ctx, mb, "C/B"); !f.Subscribed {
		t.Fatalf("C/B not subscribed: %+v", f)
	}
	if err := st.DeleteFolder(ctx, mb, "C/B"); err != nil {
		t.Fatal(err)
	}
	if got := subs(); !reflect.DeepEqual(got, []string{"C/B", "Ghost", "INBOX"}) {
		t.Fatalf("after delete: %v", got)
	}
	if err := st.SetSubscribed(ctx, mb, "Ghost", false); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSubscribed(ctx, mb, "Ghost", false); err != nil {
		t.Fatalf("unsubscribe twice: %v", err)
	}
	if err := st.DeleteMailbox(ctx, mb); err != nil {
		t.Fatal(err)
	}
	if got := subs(); len(got) != 0 {
		t.Fatalf("after mailbox delete: %v", got)
	}
}

func TestClaimRecent(t *testing.T) { backends(t, testClaimRecent) }

func testClaimRecent(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const mb = "recent@example.test"
	ingestN(t, st, mb, 3)
	f, err := st.Folder(ctx, mb, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	if f.Recent != 3 || f.RecentUID != 0 {
		t.Fatalf("fresh folder %+v", f)
	}
	from, err := st.ClaimRecent(ctx, f.ID, 3)
	if err != nil || from != 1 {
		t.Fatalf("first claim from %d, %v", from, err)
	}
	// Claimed once: a second claim of the same UIDs gets nothing.
	if from, err := st.ClaimRecent(ctx, f.ID, 3); err != nil || from != 0 {
		t.Fatalf("second claim from %d, %v", from, err)
	}
	ingestN(t, st, mb, 2)
	f, _ = st.Folder(ctx, mb, store.InboxName)
	if f.Recent != 2 || f.RecentUID != 3 {
		t.Fatalf("after new mail %+v", f)
	}
	if from, err := st.ClaimRecent(ctx, f.ID, 5); err != nil || from != 4 {
		t.Fatalf("claim of new mail from %d, %v", from, err)
	}
	if _, err := st.ClaimRecent(ctx, 999999, 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim in missing folder: %v", err)
	}
}

func TestRawMany(t *testing.T) { backends(t, testRawMany) }

func testRawMany(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	ids := ingestN(t, st, "many@example.test", 3)
	got, err := st.RawMany(ctx, append(ids, "no-such-id"))
	if err != nil || len(got) != 3 {
		t.Fatalf("RawMany: %d, %v", len(got), err)
	}
	for _, id := range ids {
		one, err := st.Raw(ctx, id)
		if err != nil || string(one) != string(got[id]) {
			t.Fatalf("message %s: %q vs %q (%v)", id, got[id], one, err)
		}
	}
}
