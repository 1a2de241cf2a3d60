package ui_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// TestWebhooksPage: the Webhooks page lists a failing delivery with its
// error and attempts, Drop removes it, and new mail's deliveries appear.
func TestWebhooksPage(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "receiver broken", http.StatusInternalServerError)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	sb, err := sandbox.Start(context.Background(), sandbox.Config{
		SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Webhook: sandbox.WebhookConfig{URLs: []string{"http://" + l.Addr().String() + "/hook"}, RetryMin: time.Hour, RetryMax: time.Hour},
	})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	e := env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
	e.send(t, "a@example.com", []string{"b@example.com"}, "From: a@example.com\nTo: b@example.com\nSubject: hooked\n\nbody\n")
	b := newTab(t, chromium, e.http, artifactsDir(t))
	b.colorScheme("light")
	b.do("open webhooks", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.http+"/#/webhooks"))
	b.waitJS("failed attempt listed", `[...document.querySelectorAll('.webhooks .relay-table tbody tr')].some(tr => tr.textContent.includes('HTTP 500') && tr.textContent.includes('receiver broken') && tr.textContent.includes('/hook'))`)
	b.waitJS("nav current", `document.getElementById('nav-webhooks').getAttribute('aria-current') === 'page'`)
	b.waitJS("badge", `document.getElementById('webhooks-count').textContent.trim().startsWith('1')`)
	b.screenshot("webhooks")
	b.do("drop", chromedp.Click(chromedp.CSS(`.webhooks .relay-table tbody tr .danger-text`)))
	b.waitJS("confirm dialog", `[...document.querySelectorAll('dialog[open] button')].some(x => x.textContent.trim() === 'Drop')`)
	eval[bool](b, `([...document.querySelectorAll('dialog[open] button')].find(x => x.textContent.trim() === 'Drop').click(), true)`)
	b.waitJS("row gone", `document.querySelector('.webhooks p.empty') !== null`)
	// New mail shows up on the open page without a reload.
	e.send(t, "a@example.com", []string{"b@example.com"}, "From: a@example.com\nTo: b@example.com\nSubject: second\n\nbody\n")
	b.waitJS("new row", `document.querySelectorAll('.webhooks .relay-table tbody tr').length === 1`)
	b.noXSS("webhooks page")
}
