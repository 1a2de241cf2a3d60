package ui_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestSanitiserRemovesWhatSecurityMdPromises: docs/security.md promises
// the frame's srcdoc has no script, base, object, embed, iframe, link or
// meta http-equiv, and no event-handler attributes. The sandboxed frame
// would stop scripts anyway; this checks the promise itself.
func TestSanitiserRemovesWhatSecurityMdPromises(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	const subj = "Sanitiser promise"
	html := `<p id="keep" onclick="window.top.__xss=1">kept</p>` +
		`<script>window.top.__xss=2</script><script src="https://evil.example/x.js"></script>` +
		`<base href="https://evil.example/"><object data="https://evil.example/o"></object>` +
		`<embed src="https://evil.example/e"><iframe src="https://evil.example/f"></iframe>` +
		`<link rel="stylesheet" href="https://evil.example/s.css"><meta http-equiv="refresh" content="0;url=https://evil.example/">` +
		`<img id="img" src="cid:none" onerror="window.top.__xss=3">`
	e.send(t, "mallory@evil.example", []string{"bob@example.com"}, mimeMessage("mallory@evil.example", "bob@example.com", subj, "text", html, nil))
	b.open(subj)
	b.do("html tab", chromedp.Click(chromedp.ID("tab-html")))
	b.frameReady()
	doc := `new DOMParser().parseFromString(document.querySelector('iframe.msg-frame').srcdoc, 'text/html')`
	if bad := eval[string](b, `[...`+doc+`.querySelectorAll('script, base, object, embed, iframe, link, meta[http-equiv]:not([http-equiv="Content-Security-Policy"]):not([http-equiv="x-dns-prefetch-control"])')].map(el => el.outerHTML).join(' | ')`); bad != "" {
		t.Errorf("frame markup keeps elements security.md says are removed: %s", bad)
	}
	// The frame's own policy (mailframe.js adds it) is the only one.
	if n := eval[int](b, doc+`.querySelectorAll('meta[http-equiv="Content-Security-Policy"]').length`); n != 1 {
		t.Errorf("%d CSP meta elements in the frame, want the UI's one", n)
	}
	if bad := eval[string](b, `[...`+doc+`.querySelectorAll('*')].filter(el => el.getAttributeNames().some(n => /^on/i.test(n))).map(el => el.outerHTML).join(' | ')`); bad != "" {
		t.Errorf("frame markup keeps event handlers: %s", bad)
	}
	if kept := eval[string](b, doc+`.getElementById('keep')?.textContent || ''`); kept != "kept" {
		t.Errorf("the harmless paragraph was lost (got %q): the check above would pass on an empty frame", kept)
	}
	b.noXSS("sanitiser")
}
