package ui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestNextPageUsesCursor: "next" asks for the mail after the last message
// shown (before=<id>), not for an offset, so it costs the same however
// deep and shows what followed the page on screen.
func TestNextPageUsesCursor(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	for i := 0; i < 55; i++ {
		e.send(t, "load@example.com", []string{"cursor@example.com"}, fmt.Sprintf("From: load@example.com\nTo: cursor@example.com\nSubject: Cursor %02d\n\nbody %d\n", i, i))
	}
	b.do("mailbox", chromedp.Navigate(e.http+"/#/mailbox/cursor%40example.com"))
	// The mailbox's own list: All mail's, still on screen while it loads,
	// may hold 50 of these messages too (the cause of this test's old
	// failures, and of a real bug: "next" used that list's last message
	// as the mailbox's cursor and skipped mail).
	b.waitJS("first page", `document.getElementById('list-title').textContent === 'cursor@example.com' && !document.getElementById('message-list').hasAttribute('aria-busy') && document.querySelectorAll('#message-list a.msg-item').length === 50`)
	last := eval[string](b, `[...document.querySelectorAll('#message-list a.msg-item')].pop().dataset.id`)
	b.do("next page", chromedp.Click(chromedp.ID("page-next")))
	b.waitJS("second page", `document.getElementById('list-range').textContent.startsWith('51') && document.querySelectorAll('#message-list a.msg-item').length === 5`)
	urls := eval[[]string](b, `performance.getEntriesByType('resource').map(r => r.name).filter(u => u.includes('/messages?'))`)
	found := false
	for _, u := range urls {
		if strings.Contains(u, "before="+last) && !strings.Contains(u, "offset=50") {
			found = true
		}
	}
	if !found {
		t.Errorf("next page did not ask before=%s: %q", last, urls)
	}
	if got := eval[string](b, `document.querySelector('#message-list a.msg-item .subject-text').textContent`); got != "Cursor 04" {
		t.Errorf("second page starts with %q, want Cursor 04", got)
	}
}

// TestNextWhileListLoads: "next" clicked while another list is still
// loading never pages from the list that is about to go: it used to take
// that list's last message as the new list's cursor, and the page after
// repeated or skipped mail (what made the cursor tests fail in CI).
func TestNextWhileListLoads(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	for i := 0; i < 60; i++ {
		e.send(t, "load@example.com", []string{"race@example.com"}, fmt.Sprintf("From: load@example.com\nTo: race@example.com\nSubject: Race %02d\n\nbody %d\n", i, i))
	}
	for i := 0; i < 10; i++ {
		e.send(t, "load@example.com", []string{"other@example.com"}, fmt.Sprintf("From: load@example.com\nTo: other@example.com\nSubject: Other %02d\n\nbody %d\n", i, i))
	}
	// All mail's first page: the ten others, then Race 59 to Race 20.
	b.waitJS("all mail", `document.querySelectorAll('#message-list a.msg-item').length === 50 && [...document.querySelectorAll('#message-list .subject-text')].pop().textContent === 'Race 20'`)
	// Open the mailbox and click "next" before its list arrives.
	b.do("mailbox, then next at once", chromedp.Evaluate[chromedp.Void](`location.hash = '#/mailbox/race%40example.com'; setTimeout(() => document.getElementById('page-next').click(), 0)`))
	b.waitJS("settled", `document.getElementById('list-title').textContent === 'race@example.com' && !document.getElementById('message-list').hasAttribute('aria-busy')`)
	subjects := eval[[]string](b, `[...document.querySelectorAll('#message-list .subject-text')].map(s => s.textContent)`)
	hash := eval[string](b, `location.hash`)
	switch {
	case strings.Contains(hash, "o=50"):
		if len(subjects) != 10 || subjects[0] != "Race 09" {
			t.Errorf("page 2 of the mailbox is %q, want Race 09 to Race 00", subjects)
		}
	case len(subjects) != 50 || subjects[0] != "Race 59":
		t.Errorf("page 1 of the mailbox is %q, want Race 59 to Race 10", subjects)
	}
	// From the mailbox's own first page, next follows it.
	b.do("next", chromedp.Click(chromedp.ID("page-next")))
	b.waitJS("second page", `location.hash.includes('o=50') && !document.getElementById('message-list').hasAttribute('aria-busy') && document.querySelectorAll('#message-list a.msg-item').length === 10`)
	if got := eval[string](b, `document.querySelector('#message-list .subject-text').textContent`); got != "Race 09" {
		t.Errorf("second page starts with %q, want Race 09", got)
	}
}
