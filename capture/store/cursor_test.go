package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestCursorPagingWhileMailArrives pages through a listing with BeforeID
// while new mail keeps arriving: every message stored before the first
// page is listed exactly once, in order, whatever arrives meanwhile. Then
// a cursor whose message was deleted still continues below it.
func TestCursorPagingWhileMailArrives(t *testing.T) {
	backends(t, testCursorPagingWhileMailArrives)
}

func testCursorPagingWhileMailArrives(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	var want []string // newest first
	for i := 0; i < 57; i++ {
		to := []string{"all@x.test"}
		if i%3 == 0 {
			to = append(to, "third@x.test")
		}
		id, err := st.Ingest(ctx, store.Envelope{From: "s@x.test", To: to}, []byte(fmt.Sprintf("Subject: old %d\r\n\r\nx\r\n", i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{id}, want...)
	}
	for _, q := range []store.Query{
		{},
		{Mailbox: "all@x.test"},
		{Mailbox: "all@x.test", Folder: store.InboxName},
		{Subject: "old"},
		{To: "all@x.test"},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			// The first page, then new mail matching every query keeps
			// arriving while the rest are read.
			q.Limit = 7
			var got []string
			var wg sync.WaitGroup
			stop := make(chan struct{})
			var once sync.Once
			halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
			defer halt() // also when a check fails first
			for pages := 0; ; pages++ {
				if pages > 500 {
					t.Fatalf("still paging after %d pages: the cursor does not advance", pages)
				}
				first := pages == 0
				page, err := st.Find(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page {
					got = append(got, m.ID)
				}
				if len(page) == 0 {
					break
				}
				q.BeforeID = page[len(page)-1].ID
				if first {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							if _, err := st.Ingest(ctx, store.Envelope{From: "s@x.test", To: []string{"all@x.test"}},
								[]byte(fmt.Sprintf("Subject: old new %d\r\n\r\nx\r\n", i))); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
			}
			halt()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("paged %d messages, want the %d stored first, in order:\n got %v\nwant %v", len(got), len(want), got, want)
			}
			want = nil // later queries see the new mail first: list afresh
			for off := 0; ; off += store.MaxLimit {
				all, err := st.Find(ctx, store.Query{Limit: store.MaxLimit, Offset: off})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range all {
					want = append(want, m.ID)
				}
				if len(all) < store.MaxLimit {
					break
				}
			}
		})
	}

	// A cursor whose message has gone continues below where it was.
	if err := st.DeleteMessage(ctx, want[10]); err != nil {
		t.Fatal(err)
	}
	page, err := st.Find(ctx, store.Query{Mailbox: "all@x.test", BeforeID: want[10], Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	// Mail of the cursor's millisecond may come again; none is skipped.
	var got []string
	for _, m := range page {
		got = append(got, m.ID)
	}
	if !slices.Contains(got, want[11]) || !slices.Contains(got, want[12]) || slices.Contains(got, want[10]) {
		t.Errorf("after a deleted cursor %s: got %v, want %s and %s", want[10], got, want[11], want[12])
	}
	if _, err := st.Find(ctx, store.Query{BeforeID: "not-an-id"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad cursor: %v, want ErrInvalid", err)
	}
}
