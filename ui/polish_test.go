package ui_test

import (
	"encoding/base64"
	"fmt"
	"image/color"
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

// TestCidImageNotListedAsAttachment: an image the HTML shows through cid:
// is part of the body even when its Content-Disposition says attachment
// (Python's email package and several mailers write it so).
func TestCidImageNotListedAsAttachment(t *testing.T) {
	e, b := openUI(t)
	const subj = "Logo by cid, disposition attachment"
	logo := pngBytes(t, 24, color.RGBA{0xb9, 0x1c, 0x1c, 0xff})
	raw := "From: news@example.com\nTo: bob@example.com\nSubject: " + subj + "\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"MIX\"\n\n--MIX\n" +
		"Content-Type: multipart/related; boundary=\"REL\"\n\n--REL\nContent-Type: text/html; charset=utf-8\n\n" +
		`<p><img src="cid:Logo@UI.test" alt="logo"> weekly</p>` +
		"\n--REL\nContent-Type: image/png\nContent-Disposition: attachment; filename=\"logo.png\"\nContent-ID: <logo@ui.test>\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString(logo) + "\n--REL--\n" +
		"--MIX\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"invoice.pdf\"\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString([]byte("%PDF-1.4")) + "\n--MIX--\n"
	e.send(t, "news@example.com", []string{"bob@example.com"}, raw)
	b.open(subj)
	got := eval[[]string](b, `[...document.querySelectorAll('.attachments .att-name')].map(n => n.textContent)`)
	if fmt.Sprint(got) != "[invoice.pdf]" {
		t.Errorf("attachments listed: %q, want only invoice.pdf", got)
	}
}

// TestListScrollsToTopOnNewPage: the next page, or another mailbox, starts
// at its first message, not where the previous list was scrolled to.
func TestListScrollsToTopOnNewPage(t *testing.T) {
	e, b := openUI(t)
	for i := 0; i < 60; i++ {
		e.send(t, "load@example.com", []string{"paging@example.com"}, fmt.Sprintf("From: load@example.com\nTo: paging@example.com\nSubject: Paging %02d\n\nbody %d\n", i, i))
	}
	b.do("mailbox", chromedp.Navigate(e.http+"/#/mailbox/paging%40example.com"))
	b.waitJS("first page", `document.querySelectorAll('#message-list a.msg-item').length === 50`)
	b.do("scroll down", chromedp.Evaluate[chromedp.Void](`document.getElementById('message-list').scrollTop = 1e6`))
	b.waitJS("scrolled", `document.getElementById('message-list').scrollTop > 0`)
	b.do("next page", chromedp.Click(chromedp.ID("page-next")))
	b.waitJS("second page", `document.getElementById('list-range').textContent.startsWith('51') && document.querySelectorAll('#message-list a.msg-item').length === 10`)
	if top := eval[float64](b, `document.getElementById('message-list').scrollTop`); top != 0 {
		t.Errorf("second page scrolled to %v, want the top", top)
	}
	b.do("prev page", chromedp.Click(chromedp.ID("page-prev")))
	b.waitJS("first page again", `document.getElementById('list-range').textContent.startsWith('1–')`)
	b.do("scroll down", chromedp.Evaluate[chromedp.Void](`document.getElementById('message-list').scrollTop = 1e6`))
	b.do("all mail", chromedp.Click(chromedp.ID("nav-all")))
	b.waitJS("all mail", `document.getElementById('list-title').textContent === 'All mail' && !document.getElementById('message-list').hasAttribute('aria-busy')`)
	if top := eval[float64](b, `document.getElementById('message-list').scrollTop`); top != 0 {
		t.Errorf("all mail scrolled to %v, want the top", top)
	}
}
