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
