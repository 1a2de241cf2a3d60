package rest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestFilteredTotalCapped: a filtered search counts up to store.CountCap
// matches and then says total is a lower bound (total_exact false);
// total=exact counts them all; listings without filters are exact
// however large. The page is the same either way.
func TestFilteredTotalCapped(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	n := store.CountCap + 3
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := fmt.Sprintf("From: a@x.test\r\nTo: many@x.test\r\nSubject: Bulk %d\r\n\r\nx\r\n", i)
			if _, err := e.st.Ingest(context.Background(), store.Envelope{From: "a@x.test", To: []string{"many@x.test"}}, []byte(raw)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.ingest("a@x.test", []string{"few@x.test"}, "Subject: Lone\r\n", "x")
	type list struct {
		Total      int           `json:"total"`
		TotalExact bool          `json:"total_exact"`
		Messages   []summaryJSON `json:"messages"`
	}
	for _, c := range []struct {
		path  string
		total int
		exact bool
	}{
		{"/messages/search?subject=bulk&limit=5", store.CountCap, false},
		{"/messages/search?subject=bulk&limit=5&total=exact", n, true},
		{"/messages/search?to=few@x.test", 1, true},
		{"/messages/search?limit=5", n + 1, true},
		{"/mailboxes/many@x.test/messages?limit=5", n, true},
		{"/mailboxes/many@x.test/messages?limit=5&subject=bulk", store.CountCap, false},
		{"/mailboxes/many@x.test/messages?limit=5&subject=bulk&total=exact", n, true},
	} {
		var l list
		e.getJSON(c.path, "MessageList", &l)
		if l.Total != c.total || l.TotalExact != c.exact {
			t.Errorf("%s: total %d total_exact %v, want %d %v", c.path, l.Total, l.TotalExact, c.total, c.exact)
		}
		if want := min(5, c.total); c.path != "/messages/search?to=few@x.test" && len(l.Messages) != want {
			t.Errorf("%s: %d messages, want %d", c.path, len(l.Messages), want)
		}
	}
	e.expect(http.MethodGet, "/api/v1/messages/search?subject=bulk&total=all", nil, "", http.StatusBadRequest)
}
