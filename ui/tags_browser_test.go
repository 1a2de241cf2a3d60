package ui_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// TestTagsInUI: an X-Tags message shows its tag as a chip in the list and
// the sidebar; a tag added by hand in the message view reaches the store,
// the sidebar's tag filter lists only tagged mail, and removing it works.
func TestTagsInUI(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	sb, err := sandbox.Start(context.Background(), sandbox.Config{SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	e := env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: Tagged one\nX-Tags: signup\n\nhello\n")
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: Plain one\n\nhello\n")
	b := newTab(t, chromium, e.http, artifactsDir(t))
	b.do("open UI", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.http+"/"), chromedp.WaitVisible(chromedp.ID("message-list")))
	b.waitJS("chip in the list", `[...document.querySelectorAll('#message-list .tag-chip')].some((c) => c.textContent === 'signup')`)
	b.waitJS("tag in the sidebar", `[...document.querySelectorAll('#tag-list a')].some((a) => a.dataset.tag === 'signup')`)

	b.open("Plain one")
	b.do("add a tag", chromedp.WaitVisible(chromedp.ID("tag-input")), chromedp.SendKeys("#tag-input", "qa-run 7"+kb.Enter))
	b.waitJS("chip in the view", `[...document.querySelectorAll('#tag-editor .tag-chip a')].some((a) => a.textContent === 'qa-run 7')`)
	list := e.search(t, map[string][]string{"tag": {"QA-RUN 7"}})
	if len(list) != 1 || list[0].Subject != "Plain one" {
		t.Fatalf("tag added in the UI: search by tag finds %+v", list)
	}
	b.waitJS("new tag in the sidebar", `[...document.querySelectorAll('#tag-list a')].some((a) => a.dataset.tag === 'qa-run 7')`)
	b.clickJS("filter by tag", `#tag-list a[data-tag="signup"]`)
	b.waitJS("only tagged mail", `document.querySelectorAll('#message-list .msg-item').length === 1 &&
		document.querySelector('#message-list .subject-text').textContent === 'Tagged one'`)

	b.open("Tagged one")
	b.clickJS("remove the tag", `#tag-editor .tag-remove`)
	b.waitJS("chip gone", `document.querySelectorAll('#tag-editor .tag-chip').length === 0`)
	if list := e.search(t, map[string][]string{"tag": {"signup"}}); len(list) != 0 {
		t.Fatalf("tag removed in the UI is still stored: %+v", list)
	}
}
