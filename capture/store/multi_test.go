package store_test

// Several store instances on one PostgreSQL database, as several sandbox
// processes behind a load balancer would run.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// openInstances opens n stores on one fresh PostgreSQL schema.
func openInstances(t *testing.T, n int) []*store.Store {
	st, _ := openInstancesDSN(t, n)
	return st
}

func openInstancesDSN(t *testing.T, n int) ([]*store.Store, string) {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	var out []*store.Store
	for i := 0; i < n; i++ {
		out = append(out, openTest(t, store.Options{DSN: dsn}))
	}
	return out, dsn
}

// nextEvent returns the next event of kind, failing after a few seconds.
func nextEvent(t *testing.T, ch <-chan store.Event, kind store.EventKind) store.Event {
	t.Helper()
	return waitEvent(t, ch, kind, func(store.Event) bool { return true })
}

// waitEvent returns the next event of kind that ok accepts.
func waitEvent(t *testing.T, ch <-chan store.Event, kind store.EventKind, ok func(store.Event) bool) store.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("event stream closed while waiting for %s", kind)
			}
			if ev.Kind == kind && ok(ev) {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s event", kind)
		}
	}
}

func TestInstancesSeeEachOthersEvents(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := openInstances(t, 2)
	a, b := st[0], st[1]
	other := openTest(t, store.Options{DSN: storetest.PostgresDSN(t)}) // another schema: another sandbox
	onA, onB, onOther := a.Subscribe(ctx), b.Subscribe(ctx), other.Subscribe(ctx)

	id, err := a.Ingest(ctx, store.Envelope{From: "x@y", To: []string{"Bob@example.com"}}, msg("x@y", "bob@example.com", "", "hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, onB, store.EventMessage)
	if ev.MessageID != id || len(ev.Mailboxes) != 1 || ev.Mailboxes[0] != "bob@example.com" {
		t.Fatalf("B saw %+v", ev)
	}
	if ev := nextEvent(t, onB, store.EventEntry); ev.Mailbox != "bob@example.com" || len(ev.UIDs) != 1 || ev.UIDs[0] != 1 {
		t.Fatalf("B saw new entry %+v", ev)
	}
	// A sees its own event once, from its own hub.
	if ev := nextEvent(t, onA, store.EventMessage); ev.MessageID != id {
		t.Fatalf("A saw %+v", ev)
	}
	// Changes on B reach A.
	if err := b.SetSeen(ctx, id, "", true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, onA, store.EventFlags, func(ev store.Event) bool { return ev.MessageID == id })
	if err := b.DeleteMessage(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, onA, store.EventDeleted); ev.MessageID != id {
		t.Fatalf("A saw %+v", ev)
	}
	// A burst large enough to need several notifications arrives whole and
	// in order.
	const n = 150
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			ids[i], err = a.Ingest(ctx, store.Envelope{From: "x@y", To: []string{fmt.Sprintf("u%d@example.com", i%7)}}, msg("x@y", "u@example.com", "", "burst", "body"))
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		ev := nextEvent(t, onB, store.EventMessage)
		if !want[ev.MessageID] {
			t.Fatalf("unexpected or repeated message event %+v", ev)
		}
		delete(want, ev.MessageID)
	}
	select {
	case ev := <-onOther:
		t.Fatalf("a store on another schema saw %+v", ev)
	default:
	}
}

func TestInstancesOversizedEventCutsSubscribersOff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := openInstances(t, 2)
	a, b := st[0], st[1]
	onB := b.Subscribe(ctx)
	var rcpts []string
	for i := 0; i < 300; i++ {
		rcpts = append(rcpts, fmt.Sprintf("a-rather-long-recipient-address-%03d@example.com", i))
	}
	if _, err := a.Ingest(ctx, store.Envelope{From: "x@y", To: rcpts}, msg("x@y", "many@example.com", "", "big", "body")); err != nil {
		t.Fatal(err)
	}
	// The message event does not fit a NOTIFY payload: B's subscribers are
	// cut off, to re-read, instead of missing it.
	for {
		select {
		case ev, ok := <-onB:
			if !ok {
				goto resubscribe
			}
			if ev.Kind == store.EventMessage {
				t.Fatalf("B got an event that cannot fit: %d mailboxes", len(ev.Mailboxes))
			}
		case <-ctx.Done():
			t.Fatal("B's subscriber was not cut off")
		}
	}
resubscribe:
	onB = b.Subscribe(ctx)
	id, err := a.Ingest(ctx, store.Envelope{From: "x@y", To: []string{"z@example.com"}}, msg("x@y", "z@example.com", "", "small", "body"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, onB, store.EventMessage); ev.MessageID != id {
		t.Fatalf("after resubscribing B saw %+v", ev)
	}
}

func TestInstancesListenerReconnects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, dsn := openInstancesDSN(t, 2)
	a, b := st[0], st[1]
	onB := b.Subscribe(ctx)
	// Kill every LISTEN connection of this schema's channel: B's (and A's)
	// listeners reconnect and cut their subscribers off, as events may have
	// been missed meanwhile.
	db, err := sql.Open("pgx", os.Getenv(storetest.EnvDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	res, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'`, schema)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("terminated %d listeners, want 2", n)
	}
	for {
		ev, ok := <-onB
		if !ok {
			break
		}
		t.Logf("event before the cut: %+v", ev)
	}
	onB = b.Subscribe(ctx)
	id, err := a.Ingest(ctx, store.Envelope{From: "x@y", To: []string{"z@example.com"}}, msg("x@y", "z@example.com", "", "after", "body"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, onB, store.EventMessage); ev.MessageID != id {
		t.Fatalf("after reconnecting B saw %+v", ev)
	}
}

func TestInstancesShareMaildropLocks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openInstances(t, 2)
	a, b := st[0], st[1]
	unlock, err := a.LockMailbox(ctx, "Bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.LockMailbox(ctx, "bob@example.com"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("B locked a mailbox A holds: %v", err)
	}
	if _, err := a.LockMailbox(ctx, "bob@example.com"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("A locked its own mailbox twice: %v", err)
	}
	other, err := b.LockMailbox(ctx, "carol@example.com")
	if err != nil {
		t.Fatalf("another mailbox: %v", err)
	}
	other()
	unlock()
	unlock() // harmless
	unlockB, err := b.LockMailbox(ctx, "bob@example.com")
	if err != nil {
		t.Fatalf("B after A released: %v", err)
	}
	if _, err := a.LockMailbox(ctx, "bob@example.com"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("A locked a mailbox B holds: %v", err)
	}
	// A closed instance's locks go with it.
	b.Close()
	unlockB() // after Close: must not hang or panic
	if u, err := a.LockMailbox(ctx, "bob@example.com"); err != nil {
		t.Fatalf("A after B closed: %v", err)
	} else {
		u()
	}
}

func TestInstancesAllocateUIDsWithoutGapsOrRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openInstances(t, 3)
	mailboxes := []string{"p@example.com", "q@example.com", "r@example.com"}
	const perWorker = 8
	var wg sync.WaitGroup
	for i, s := range st {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(s *store.Store, w int) {
				defer wg.Done()
				for k := 0; k < perWorker; k++ {
					// Recipients in a different order per worker: the
					// folders are locked in opposite orders.
					to := append([]string{}, mailboxes...)
					if (w+k)%2 == 1 {
						sort.Sort(sort.Reverse(sort.StringSlice(to)))
					}
					if _, err := s.Ingest(ctx, store.Envelope{From: "x@y", To: to}, msg("x@y", strings.Join(to, ", "), "", "uid", "body")); err != nil {
						t.Error(err)
						return
					}
				}
			}(s, i*10+w)
		}
	}
	wg.Wait()
	const total = 3 * 4 * perWorker
	for _, mb := range mailboxes {
		f, err := st[1].Folder(ctx, mb, store.InboxName)
		if err != nil {
			t.Fatal(err)
		}
		es, err := st[2].Entries(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != total || f.UIDNext != total+1 {
			t.Fatalf("%s: %d entries, uidnext %d; want %d", mb, len(es), f.UIDNext, total)
		}
		for i, e := range es {
			if e.UID != uint32(i+1) {
				t.Fatalf("%s: uid %d at %d", mb, e.UID, i)
			}
		}
	}
}

func TestInstancesStartTogether(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	const n = 4
	stores := make([]*store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			stores[i], errs[i] = store.Open(context.Background(), store.Options{DSN: dsn})
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		defer stores[i].Close()
	}
	id, err := stores[0].Ingest(context.Background(), store.Envelope{From: "x@y", To: []string{"z@example.com"}}, msg("x@y", "z@example.com", "", "hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stores[n-1].Get(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func TestInstancesFlagChangesAreNotLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openInstances(t, 2)
	const mb = "f@example.com"
	if _, err := st[0].Ingest(ctx, store.Envelope{From: "x@y", To: []string{mb}}, msg("x@y", mb, "", "flags", "body")); err != nil {
		t.Fatal(err)
	}
	f, err := st[0].Folder(ctx, mb, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	for i, s := range st {
		wg.Add(1)
		go func(i int, s *store.Store) {
			defer wg.Done()
			for k := 0; k < n; k++ {
				if _, err := s.UpdateFlags(ctx, f.ID, []uint32{1}, store.FlagsAdd, []string{fmt.Sprintf("k%d_%d", i, k)}); err != nil {
					t.Error(err)
					return
				}
			}
		}(i, s)
	}
	wg.Wait()
	es, err := st[1].Entries(ctx, f.ID)
	if err != nil || len(es) != 1 {
		t.Fatalf("entries %+v %v", es, err)
	}
	if len(es[0].Flags) != 2*n {
		t.Fatalf("%d flags survived concurrent changes, want %d: %v", len(es[0].Flags), 2*n, es[0].Flags)
	}
}

func TestInstancesDeletingCopiesTogetherDropsTheMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openInstances(t, 2)
	for round := 0; round < 5; round++ {
		for i := 0; i < 20; i++ {
			if _, err := st[0].Ingest(ctx, store.Envelope{From: "x@y", To: []string{"x@example.com", "y@example.com"}}, msg("x@y", "x@example.com", "", "two copies", "body")); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i, mb := range []string{"x@example.com", "y@example.com"} {
			wg.Add(1)
			go func(s *store.Store, mb string) {
				defer wg.Done()
				if err := s.DeleteMailbox(ctx, mb); err != nil {
					t.Error(err)
				}
			}(st[i], mb)
		}
		wg.Wait()
		if list, total, err := st[1].Search(ctx, store.Query{}); err != nil || total != 0 {
			t.Fatalf("round %d: %d messages left in no mailbox (%v): %+v", round, total, err, list[:min(len(list), 1)])
		}
	}
}
