package ui_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// TestBrowserUnderWebroot: with --http-webroot (Mailpit's MP_WEBROOT) the
// UI at /mail/ loads its scripts and styles, lists mail over the API under
// /mail/api/v1, gets new mail live over /mail/api/v1/events, opens a
// message with its frame, and links parts and raw source under /mail/.
func TestBrowserUnderWebroot(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	cfg := sandbox.Config{SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}
	cfg.Compat.HTTPWebroot = "/mail/"
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	if !strings.HasSuffix(sb.URL(), "/mail") {
		t.Fatalf("URL %q does not name the webroot", sb.URL())
	}
	e := env{http: sb.URL(), smtp: sb.SMTPAddr()}
	b := newTab(t, chromium, e.http, artifactsDir(t))
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.errs {
			t.Errorf("uncaught exception in the UI: %s", s)
		}
	})
	e.send(t, "alice@example.com", []string{"bob@example.com"}, mimeMessage(
		"Alice <alice@example.com>", "Bob <bob@example.com>", "Before the page loaded", "first",
		`<p>first <b>html</b></p>`, map[string]string{"notes.txt": "some notes\n"}))
	b.do("open UI under the webroot",
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(e.http+"/"),
		chromedp.WaitVisible(chromedp.ID("message-list")),
	)
	b.waitJS("styles applied", `getComputedStyle(document.querySelector('.topbar')).display !== 'inline'`)
	b.waitJS("live updates connected", `document.getElementById('live-dot').classList.contains('on')`)
	b.itemID("Before the page loaded")
	e.send(t, "alice@example.com", []string{"bob@example.com"}, mimeMessage(
		"Alice <alice@example.com>", "Bob <bob@example.com>", "Arrived live", "second", "", nil))
	b.itemID("Arrived live")
	b.open("Before the page loaded")
	b.frameReady()
	b.waitJS("links under the webroot", `[...document.querySelectorAll('article.message a[href*="/api/v1/messages/"]')].length > 0 &&
		[...document.querySelectorAll('article.message a[href*="/api/v1/messages/"]')].every(a => new URL(a.href).pathname.startsWith('/mail/api/v1/'))`)
	b.screenshot("webroot")
}
