package ui_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// TestReleaseHiddenWithoutRelay: with no relay destination configured, the
// message view offers no Release button, since releasing could only fail.
func TestReleaseHiddenWithoutRelay(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	sb, err := sandbox.Start(context.Background(), sandbox.Config{SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	e := env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
	const subj = "No relay here"
	e.send(t, "alice@example.com", []string{"bob@example.com"}, mimeMessage("alice@example.com", "bob@example.com", subj, "hello", "", nil))
	b := newTab(t, chromium, e.http, artifactsDir(t))
	b.do("open UI", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.http+"/"), chromedp.WaitVisible(chromedp.ID("message-list")))
	b.waitJS("relay state known", `document.body.classList.contains('relay-off')`)
	b.open(subj)
	if shown := eval[bool](b, `getComputedStyle(document.getElementById('btn-release')).display !== 'none'`); shown {
		t.Fatal("Release is offered without a relay")
	}
}
