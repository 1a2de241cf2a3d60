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
	e, b := openUI(t)
	for i := 0; i < 55; i++ {
		e.send(t, "load@example.com", []string{"cursor@example.com"}, fmt.Sprintf("From: load@example.com\nTo: cursor@example.com\nSubject: Cursor %02d\n\nbody %d\n", i, i))
	}
	b.do("mailbox", chromedp.Navigate(e.http+"/#/mailbox/cursor%40example.com"))
	b.waitJS("first page", `document.querySelectorAll('#message-list a.msg-item').length === 50`)
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
