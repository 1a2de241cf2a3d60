package sdk_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// TestCursorPaging pages a search and a mailbox listing with the cursor
// over REST while mail keeps arriving: every message stored before the
// first page comes exactly once, in order.
func TestCursorPaging(t *testing.T) {
	s := sandboxtest.New(t)
	c := s.Client()
	ctx := context.Background()
	send := func(subject string) string {
		id, err := c.SendRaw(ctx, []byte("From: a@example.com\r\nTo: bob@example.com\r\nSubject: "+subject+"\r\n\r\nhi\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	var want []string
	for i := 0; i < 23; i++ {
		want = append([]string{send(fmt.Sprintf("page %d", i))}, want...)
	}
	drain := func(next func() (*sdk.MessageList, bool, error)) []string {
		var got []string
		var wg sync.WaitGroup
		stop := make(chan struct{})
		defer func() { close(stop); wg.Wait() }()
		for pages := 0; ; pages++ {
			if pages > 200 {
				t.Fatalf("still paging after %d pages: the cursor does not advance", pages)
			}
			first := pages == 0
			page, more, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.Messages {
				got = append(got, m.ID)
			}
			if !more {
				return got
			}
			if first { // new mail while the later pages are read
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
							send(fmt.Sprintf("page new %d", i))
						}
					}
				}()
			}
		}
	}
	f := sdk.Filter{Subject: "page", Limit: 5}
	got := drain(func() (*sdk.MessageList, bool, error) {
		page, err := c.Search(ctx, f)
		if err != nil {
			return nil, false, err
		}
		var ok bool
		f, ok = page.NextFilter(f)
		return page, ok, nil
	})
	if !slices.Equal(got, want) {
		t.Errorf("search paged %d, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}

	// The listing starts from its newest message, now.
	all, err := c.Search(ctx, sdk.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want = want[:0]
	for _, m := range all.Messages {
		want = append(want, m.ID)
	}
	o := sdk.ListOptions{Limit: 4}
	got = drain(func() (*sdk.MessageList, bool, error) {
		page, err := c.ListMailbox(ctx, "bob@example.com", o)
		if err != nil {
			return nil, false, err
		}
		var ok bool
		o, ok = page.NextOptions(o)
		return page, ok, nil
	})
	if !slices.Equal(got, want) {
		t.Errorf("listing paged %d, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}

	if _, err := c.Search(ctx, sdk.Filter{BeforeID: "01M92GJBYQVPT1T1BRM521P3J!"}); sdk.StatusCode(err) != http.StatusBadRequest {
		t.Errorf("a cursor that is neither a time nor an id: %v, want 400", err)
	}
}
