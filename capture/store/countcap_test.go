package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestSearchCappedCount: a filtered search counts its matches up to the
// cap and then says the total is a lower bound; below the cap, and for the
// listings whose counts are kept, the total is exact. The page itself is
// the same whatever the cap, also past a capped total.
func TestSearchCappedCount(t *testing.T) {
	backends(t, testSearchCappedCount)
}

func testSearchCappedCount(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	for i := 0; i < 30; i++ {
		to := []string{"many@x.test"}
		subject := fmt.Sprintf("Invoice %d", i)
		if i%10 == 0 {
			to = append(to, "few@x.test")
			subject = fmt.Sprintf("Receipt %d", i)
		}
		if _, err := st.Ingest(ctx, store.Envelope{From: "s@x.test", To: to}, []byte("Subject: "+subject+"\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name      string
		q         store.Query
		limit     int
		total     int
		exact     bool
		pageFirst string // subject of the page's first message
		pageLen   int
	}{
		{"filter past the cap", store.Query{Subject: "invoice", Limit: 5}, 10, 10, false, "Invoice 29", 5},
		{"filter at the cap", store.Query{Subject: "invoice", Limit: 5}, 27, 27, true, "Invoice 29", 5},
		{"filter under the cap", store.Query{Subject: "invoice", Limit: 5}, 100, 27, true, "Invoice 29", 5},
		{"few matches", store.Query{Subject: "receipt"}, 10, 3, true, "Receipt 20", 3},
		{"page past a capped total", store.Query{Subject: "invoice", Limit: 5, Offset: 20}, 10, 10, false, "Invoice 7", 5},
		{"mailbox and filter", store.Query{Mailbox: "many@x.test", Folder: store.InboxName, To: "many@", Limit: 5}, 10, 10, false, "Invoice 29", 5},
		{"all mail: kept count", store.Query{Limit: 5}, 10, 30, true, "Invoice 29", 5},
		{"mailbox: kept count", store.Query{Mailbox: "many@x.test", Folder: store.InboxName, Limit: 5}, 10, 30, true, "Invoice 29", 5},
		{"default cap", store.Query{Subject: "invoice", Limit: 5}, 0, 27, true, "Invoice 29", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			page, total, exact, err := st.SearchCapped(ctx, c.q, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if total != c.total || exact != c.exact {
				t.Errorf("total %d exact %v, want %d %v", total, exact, c.total, c.exact)
			}
			if len(page) != c.pageLen || page[0].Subject != c.pageFirst {
				t.Errorf("page of %d starting %q, want %d starting %q", len(page), subjectOf(page), c.pageLen, c.pageFirst)
			}
			if _, n, err := st.Search(ctx, c.q); err != nil || (c.exact && n != total) || (!c.exact && n <= total) {
				t.Errorf("exact count %d (%v) against capped %d exact %v", n, err, total, exact)
			}
		})
	}
}

func subjectOf(ms []store.Message) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].Subject
}

// TestFindBeyondRecentWindow: Find first looks among the newest messages;
// matches older than that window, or a page only partly inside it, are
// still found, in order, and a tag on many recent messages (checked row by
// row) lists the same as a rare one.
func TestFindBeyondRecentWindow(t *testing.T) {
	backends(t, testFindBeyondRecentWindow)
}

func testFindBeyondRecentWindow(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	const n = 1300
	ids := make([]string, n)
	ingest := func(i int) {
		to := "bulk@x.test"
		if i == 0 || i == n-5 {
			to = "rare@x.test"
		}
		id, err := st.Ingest(ctx, store.Envelope{From: "s@x.test", To: []string{to}}, []byte(fmt.Sprintf("To: %s\r\nSubject: Message %d\r\n\r\nx\r\n", to, i)))
		if err != nil {
			t.Error(err)
		}
		ids[i] = id
	}
	for i := 0; i < n; i += 100 {
		// Concurrent ingests share group commits; the order of seq within a
		// batch of 100 does not matter to this test, only across batches.
		done := make(chan struct{})
		for j := i; j < i+100; j++ {
			go func() { ingest(j); done <- struct{}{} }()
		}
		for j := 0; j < 100; j++ {
			<-done
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// rare@ twice: once among the newest, once far below the window.
	got, err := st.Find(ctx, store.Query{To: "rare@x.test", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[n-5] || got[1].ID != ids[0] {
		t.Errorf("rare@: %v, want %s then %s", subjects(got), "Message 1295", "Message 0")
	}
	// Only the oldest, below a cursor that skips the newer one.
	got, err = st.Find(ctx, store.Query{To: "rare@x.test", Limit: 1, BeforeID: ids[n-5]})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != ids[0] {
		t.Errorf("rare@ below the cursor: %v, want Message 0", subjects(got))
	}
	// A tag on the newest 40 and on the oldest: recent enough to be checked
	// row by row.
	if err := st.EditTags(ctx, append(append([]string{}, ids[n-40:]...), ids[0]), store.TagsAdd, []string{"Hot"}); err != nil {
		t.Fatal(err)
	}
	page, total, err := st.Search(ctx, store.Query{Tag: "hot", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if total != 41 || len(page) != 41 || page[40].ID != ids[0] {
		t.Errorf("tag hot: total %d, %d listed, last %v; want 41, 41, Message 0", total, len(page), subjects(page[len(page)-1:]))
	}
	if got, err := st.Find(ctx, store.Query{Tag: "hot", Limit: 1, BeforeID: page[39].ID}); err != nil || len(got) != 1 || got[0].ID != ids[0] {
		t.Errorf("tag hot below the 40th: %v %v, want Message 0", subjects(got), err)
	}
	if _, total, err := st.Search(ctx, store.Query{Tag: "nosuchtag"}); err != nil || total != 0 {
		t.Errorf("unknown tag: %d %v", total, err)
	}
}

func subjects(ms []store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Subject
	}
	return out
}
