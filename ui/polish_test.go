package ui_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// openUI starts a sandbox and a browser on its UI at desktop size.
func openUI(t *testing.T) (env, *tab) {
	t.Helper()
	chromium := findChromium(t)
	e := newEnv(t)
	b := newTab(t, chromium, e.http, artifactsDir(t))
	b.colorScheme("light")
	b.do("open UI", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.http+"/#/all"), chromedp.WaitVisible(chromedp.ID("message-list")))
	b.waitJS("live updates connected", `document.getElementById('live-dot').classList.contains('on')`)
	return e, b
}

// TestMessageViewHasNoStrayText: a message without attachments shows no
// stray "null" between its header and its tabs (Element.append turns null
// into text, unlike the h() helper).
func TestMessageViewHasNoStrayText(t *testing.T) {
	e, b := openUI(t)
	const subj = "Nothing attached"
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: "+subj+"\n\nJust text.\n")
	b.open(subj)
	if txt := eval[string](b, `[...document.querySelector('article.message').childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join('|')`); txt != "" {
		t.Errorf("stray text in the message view: %q", txt)
	}
}
