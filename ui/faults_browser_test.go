package ui_test

import (
	"context"
	"net/smtp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// TestBrowserFaults drives the faults page: add a rule through the form,
// watch it refuse mail and count the hit, read the session log, switch
// rules off, remove the rule, and see a bad rule's error naming the field.
func TestBrowserFaults(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	sb, err := sandbox.Start(context.Background(), sandbox.Config{SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Faults: sandbox.FaultsConfig{SMTPLogSessions: 100}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	e := env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
	b := newTab(t, chromium, e.http, artifactsDir(t))
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.errs {
			t.Errorf("uncaught exception in the UI: %s", s)
		}
	})
	b.do("open faults page",
		chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(e.http+"/#/faults"),
		chromedp.WaitVisible(chromedp.CSS(".faults form.fault-form")),
	)
	b.waitJS("nav marks the page", `document.getElementById('nav-faults').getAttribute('aria-current') === 'page'`)
	b.waitJS("no rules yet", `document.querySelector('.faults .empty')`)

	b.do("fill the form",
		chromedp.SetValue(chromedp.CSS(`.fault-form select[name=stage]`), "rcpt"),
		chromedp.SendKeys(chromedp.CSS(`.fault-form input[name=to]`), "*@bounce.test"),
		chromedp.SetValue(chromedp.CSS(`.fault-form input[name=value]`), "550 5.1.1 No such user"),
		chromedp.Click(chromedp.CSS(`.fault-form button[type=submit]`)),
	)
	b.waitJS("rule listed", `document.querySelector('.faults tbody tr') && document.querySelector('.faults tbody').textContent.includes('550 5.1.1 No such user')`)

	err = smtp.SendMail(e.smtp, nil, "app@shop.test", []string{"ann@bounce.test"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("send: %v", err)
	}
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".faults form.fault-form")))
	b.waitJS("hit counted", `[...document.querySelectorAll('.faults tbody td.num')].some(td => td.textContent === '1')`)
	b.waitJS("session logged with its fault", `document.querySelector('.session-log details.has-fault') && document.querySelector('.session-log').textContent.includes('ann@bounce.test')`)
	b.do("open transcript", chromedp.Click(chromedp.CSS(`.session-log details.has-fault summary`)))
	b.waitJS("fault reply marked", `[...document.querySelectorAll('.transcript li.fault')].some(li => li.textContent.includes('550 5.1.1 No such user'))`)

	b.do("switch rules off", chromedp.Click(chromedp.ID("faults-on")))
	b.waitJS("switched off on the server", `fetch('/api/v1/faults/enabled').then(r => r.json()).then(j => { window.__on = j.enabled }) && window.__on === false`)
	if err := smtp.SendMail(e.smtp, nil, "app@shop.test", []string{"ann@bounce.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("rules off, send: %v", err)
	}

	b.do("bad rule", chromedp.SetValue(chromedp.CSS(`.fault-form input[name=value]`), "250 fine"),
		chromedp.Click(chromedp.CSS(`.fault-form button[type=submit]`)))
	b.waitJS("error names the field", `(() => { const e = document.querySelector('.fault-form .error-box'); return e && !e.hidden && e.textContent.includes('reply') })()`)

	b.do("remove the rule", chromedp.Click(chromedp.CSS(`.faults tbody button`)))
	b.waitJS("rule gone", `document.querySelector('.faults .empty')`)
	b.screenshot("faults")
}
