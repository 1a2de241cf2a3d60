package ui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestChecksTab: the Checks tab shows the HTML check's findings with the
// affected clients, the bulk-sender rules, authentication, the spam check's
// state, and link status chips once asked for.
func TestChecksTab(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	const subj = "Checks tab newsletter"
	e.send(t, "news@example.com", []string{"reader@example.com"}, "From: news@example.com\nTo: reader@example.com\nSubject: "+subj+
		"\nList-Unsubscribe: <https://example.com/u>\nContent-Type: text/html\n\n"+
		`<html><head><style>.row{display:flex}@media (max-width:600px){.row{display:block}}</style></head>`+
		`<body><div class="row" style="display:grid">x</div><a href="http://127.0.0.1:1/nowhere">dead link</a></body></html>`+"\n")
	b.open(subj)
	b.do("checks tab", chromedp.Click(chromedp.ID("tab-checks")))
	b.waitJS("html findings", `document.querySelector('#check-html li.finding[data-slug="css-display-flex"]')`)
	b.waitJS("clients listed", `[...document.querySelectorAll('#check-html li.finding[data-slug="css-display-flex"] .clients li')].some(li => li.textContent.includes('Outlook Windows'))`)
	b.waitJS("bulk rules", `document.querySelector('#check-bulk li[data-rule="list-unsubscribe-post"] .chip.bad')`)
	b.waitJS("auth", `document.querySelector('#check-auth .auth-results li')`)
	b.waitJS("spam not configured", `document.querySelector('#check-spam')?.textContent.includes('--spamassassin')`)
	b.do("check links", chromedp.Click(chromedp.ID("check-links-run")))
	b.waitJS("link chip", `document.querySelector('#check-links .link-row .chip')`)
	row := eval[string](b, `document.querySelector('#check-links .link-row').textContent`)
	if !strings.Contains(row, "127.0.0.1:1/nowhere") || !strings.Contains(row, "allow-internal-link-checks") {
		t.Errorf("link row %q: want the refused internal link", row)
	}
	b.noXSS("checks tab")
	b.screenshot("checks-tab")
}
