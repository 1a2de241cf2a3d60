package ui_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestBrowserFirstPaint10k measures how fast the UI shows its first page
// with 10,000 stored messages. It is a measurement, not an assertion, and
// runs only with MAILSANDBOX_UI_PERF=1.
func TestBrowserFirstPaint10k(t *testing.T) {
	t.Parallel()
	if os.Getenv("MAILSANDBOX_UI_PERF") != "1" {
		t.Skip("set MAILSANDBOX_UI_PERF=1 to measure first paint with 10,000 stored messages")
	}
	chromium := findChromium(t)
	artifacts := artifactsDir(t)
	sb := startFullSandbox(t)
	e := env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}

	const n = 10000
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	work := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			for i := range work {
				rcpt := fmt.Sprintf("user%d@example.com", i%40)
				raw := fmt.Sprintf("From: Sender %d <sender%d@example.com>\r\nTo: %s\r\nSubject: Load message %d\r\nDate: %s\r\nMessage-ID: <%d@perf.test>\r\n\r\nBody of message %d.\r\n",
					i, i%97, rcpt, i, time.Now().Add(-time.Duration(n-i)*time.Second).Format(time.RFC1123Z), i, i)
				if _, err := sb.Store().Ingest(context.Background(), store.Envelope{From: "sender@example.com", To: []string{rcpt}}, []byte(raw)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("ingest: %v", err)
	default:
	}
	t.Logf("stored %d messages in %v", n, time.Since(start).Round(time.Millisecond))

	b := newTab(t, chromium, e.http, artifacts)
	b.colorScheme("light")
	for run := 0; run < 3; run++ {
		if run == 0 {
			b.do("open UI", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.http+"/#/all"))
		} else {
			b.do("reload UI", chromedp.Reload())
		}
		b.waitJS("first page", `performance.getEntriesByName('mailsandbox:list-rendered').length > 0 && document.querySelectorAll('#message-list a.msg-item').length === 50`)
		b.waitJS("mailboxes", `document.querySelectorAll('#mailbox-list a').length === 40`)
		fcp := eval[float64](b, `(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime`)
		list := eval[float64](b, `performance.getEntriesByName('mailsandbox:list-rendered')[0].startTime`)
		total := eval[string](b, `document.getElementById('list-range').textContent`)
		t.Logf("run %d: first contentful paint %.0f ms, first page of messages rendered %.0f ms after navigation (%s)", run+1, fcp, list, total)
		t.Logf("run %d: requests: %s", run+1, eval[string](b, `performance.getEntriesByType('resource').filter(r => r.name.includes('/api/v1/') && !r.name.includes('/events')).map(r => r.name.replace(location.origin, '') + ' ' + Math.round(r.duration) + 'ms').join(', ')`))
	}
	// Paging deep into the list stays quick.
	t0 := time.Now()
	b.do("page 100", chromedp.Navigate(e.http+"/#/all?o=5000"))
	b.waitJS("page 100", `document.getElementById('list-range').textContent.startsWith('5,001')`)
	t.Logf("page at offset 5000 shown in %v (navigation included)", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	b.do("search", chromedp.Navigate(e.http+"/#/search/subject%3A%22Load%20message%209999%22"))
	b.waitJS("search result", `document.querySelectorAll('#message-list a.msg-item').length === 1`)
	t.Logf("search over %d messages shown in %v (navigation included)", n, time.Since(t0).Round(time.Millisecond))
	b.screenshot("perf-10k")
}
