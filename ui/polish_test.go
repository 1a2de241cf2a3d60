package ui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/color"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	e, b := openUI(t)
	for i := 0; i < 60; i++ {
		e.send(t, "load@example.com", []string{"paging@example.com"}, fmt.Sprintf("From: load@example.com\nTo: paging@example.com\nSubject: Paging %02d\n\nbody %d\n", i, i))
	}
	b.do("mailbox", chromedp.Navigate(e.http+"/#/mailbox/paging%40example.com"))
	// The mailbox's own list, not All mail's still on screen (it may hold
	// 50 of these messages too while the mailbox's list loads).
	b.waitJS("first page", `document.getElementById('list-title').textContent === 'paging@example.com' && !document.getElementById('message-list').hasAttribute('aria-busy') && document.querySelectorAll('#message-list a.msg-item').length === 50`)
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

// TestEmptySearchSaysWhatWasSearched: an empty result names the query and
// the search syntax, right under the list head (not at the pane's bottom).
func TestEmptySearchSaysWhatWasSearched(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	b.do("search", chromedp.Navigate(e.http+"/#/search/"+url.PathEscape("from:nobody zebra")))
	b.waitJS("empty result", `document.getElementById('list-title').textContent === 'Search results' && !document.getElementById('message-list').hasAttribute('aria-busy') && !document.getElementById('list-empty').hidden`)
	txt := eval[string](b, `document.getElementById('list-empty').textContent`)
	if !strings.Contains(txt, "from:nobody zebra") || !strings.Contains(txt, "subject:") {
		t.Errorf("empty search says %q; want the query and the prefixes", txt)
	}
	gap := eval[float64](b, `document.getElementById('list-empty').getBoundingClientRect().top - document.querySelector('.list-head').getBoundingClientRect().bottom`)
	if gap > 40 {
		t.Errorf("empty-state text is %vpx below the list head; want it right under it", gap)
	}
}

// TestServerDown: when the sandbox stops answering, the page says so in
// words, and a list that cannot load shows the scope it was asked for.
func TestServerDown(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	sb := startFullSandbox(t)
	e := env{http: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: Before the outage\n\nhi\n")
	b := newTab(t, chromium, e.http, artifactsDir(t))
	b.do("open UI", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(e.http+"/#/all"), chromedp.WaitVisible(chromedp.ID("message-list")))
	b.waitJS("live updates connected", `document.getElementById('live-dot').classList.contains('on')`)
	b.itemID("Before the outage")
	if err := sb.Close(); err != nil {
		t.Logf("close sandbox: %v", err)
	}
	b.waitJS("offline banner", `!document.getElementById('conn-banner').hidden && getComputedStyle(document.getElementById('conn-banner')).display !== 'none'`)
	// A live refresh that fails keeps the list on screen.
	if n := eval[int](b, `document.querySelectorAll('#message-list a.msg-item').length`); n != 1 {
		t.Errorf("list after the server went away has %d items, want the 1 it had", n)
	}
	b.do("mailbox", chromedp.Evaluate[chromedp.Void](`location.hash = '#/mailbox/bob%40example.com'`))
	b.waitJS("list error", `!document.getElementById('list-empty').hidden && document.getElementById('list-empty').textContent.includes('Could not load')`)
	if title := eval[string](b, `document.getElementById('list-title').textContent`); title != "bob@example.com" {
		t.Errorf("list title %q while bob's mailbox failed to load", title)
	}
	if txt := eval[string](b, `document.getElementById('list-empty').textContent`); strings.Contains(txt, "Failed to fetch") || !strings.Contains(txt, "does not answer") {
		t.Errorf("list error %q; want plain words", txt)
	}
	if eval[bool](b, `!document.getElementById('list-clear').hidden || document.getElementById('list-range').textContent !== ''`) {
		t.Error("a list that failed to load still offers Delete all or a message count")
	}
	b.do("relay", chromedp.Evaluate[chromedp.Void](`location.hash = '#/relay'`))
	b.waitJS("relay error", `document.querySelector('.relay .error-box')`)
	b.screenshot("server-down-relay")
	// The banner says it once; no error toast repeats it.
	if txt := eval[string](b, `(t => t.hidden ? '' : t.textContent)(document.getElementById('toast'))`); strings.Contains(txt, "does not answer") {
		t.Errorf("error toast %q repeats the banner", txt)
	}
}

// contrastJS returns, for each selector, the WCAG contrast ratio of the
// first match's text against the background it is drawn on.
const contrastJS = `(sels => {
  const parse = s => { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = el => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor); if (c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const out = {};
  for (const s of sels) {
    const el = document.querySelector(s);
    if (!el) { out[s] = -1; continue; }
    const a = lum(parse(getComputedStyle(el).color)), b = lum(bg(el));
    out[s] = Math.round((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) * 100) / 100;
  }
  return out;
})`

// TestContrast: text meets WCAG AA (4.5:1) in both colour schemes,
// including the white-on-red pieces (error toast, danger button, offline
// banner) whose red turns light in dark mode.
func TestContrast(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: Alice <alice@example.com>\nTo: bob@example.com\nSubject: Contrast\n\nsome text\n")
	b.itemID("Contrast")
	sels := []string{"#compose-btn", "#all-unread", ".nav-heading", "#message-list .msg-item.unread .date", "#message-list .snippet", "#list-range", "#toast", "#conn-banner", "dialog[open] .btn.danger", "#placeholder p.muted"}
	for _, scheme := range []string{"light", "dark"} {
		b.colorScheme(scheme)
		b.do("show red pieces", chromedp.Evaluate[chromedp.Void](`(() => {
			const t = document.getElementById('toast'); t.className = 'toast error'; t.textContent = 'Could not delete'; t.hidden = false;
			document.getElementById('conn-banner').hidden = false;
		})()`))
		if !eval[bool](b, `!!document.querySelector('dialog[open]')`) {
			b.do("confirm dialog", chromedp.Click(chromedp.ID("list-clear")))
			b.waitJS("dialog", `document.querySelector('dialog[open] .btn.danger')`)
		}
		got := eval[map[string]float64](b, contrastJS+"("+toJSON(sels)+")")
		for _, s := range sels {
			if r := got[s]; r < 4.5 {
				t.Errorf("%s: %s has contrast %.2f, want at least 4.5", scheme, s, r)
			}
		}
	}
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestLongRecipientListsCollapse: forty recipients show the first five and
// an "and N more" button that reveals the rest.
func TestLongRecipientListsCollapse(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	var to []string
	for i := 0; i < 40; i++ {
		to = append(to, fmt.Sprintf("user%d@example.com", i))
	}
	const subj = "Forty recipients"
	e.send(t, "mass@example.com", to, "From: mass@example.com\nTo: "+strings.Join(to, ", ")+"\nSubject: "+subj+"\n\nhello all\n")
	b.do("all", chromedp.Navigate(e.http+"/#/all"))
	b.open(subj)
	dd := `[...document.querySelectorAll('.msg-addrs dt')].find(dt => dt.textContent === 'To').nextElementSibling`
	if n := eval[int](b, dd+`.textContent.split('@').length - 1`); n != 5 {
		t.Errorf("To row shows %d addresses, want 5 before expanding", n)
	}
	if got := eval[string](b, dd+`.querySelector('button')?.textContent || ''`); got != "and 35 more" {
		t.Fatalf("To row button %q, want 'and 35 more'", got)
	}
	b.do("expand", chromedp.Evaluate[chromedp.Void](dd+`.querySelector('button').click()`))
	if n := eval[int](b, dd+`.textContent.split('@').length - 1`); n != 40 {
		t.Errorf("expanded To row shows %d addresses, want 40", n)
	}
	if !eval[bool](b, dd+`.contains(document.activeElement)`) {
		t.Error("focus left the To row after expanding it")
	}
}

// TestBlockedRemoteImagesAreQuiet: a blocked remote image is not fetched
// and leaves no Content-Security-Policy error in the console (the frame's
// CSP is the second line, not the mechanism).
func TestBlockedRemoteImagesAreQuiet(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	var mu sync.Mutex
	var errs []string
	const marker = "mailsandbox-test: console drained"
	drained := make(chan struct{})
	cons := chromedp.Console(b.ctx)
	go func() {
		for m, err := range cons {
			if err != nil {
				return
			}
			if m.Type == "error" && m.Text == marker {
				close(drained)
				continue
			}
			if m.Type == "error" {
				mu.Lock()
				errs = append(errs, m.Text)
				mu.Unlock()
			}
		}
	}()
	const subj = "Remote pictures"
	html := `<p>Hello</p><img src="http://127.0.0.1:1/a.png" alt="a"><picture><source srcset="https://127.0.0.1:1/b.webp"><img src="//127.0.0.1:1/b.png" alt="b"></picture><table background="http://127.0.0.1:1/bg.png"><tr><td>x</td></tr></table>`
	e.send(t, "news@example.com", []string{"bob@example.com"}, mimeMessage("news@example.com", "bob@example.com", subj, "text", html, nil))
	b.open(subj)
	b.do("html tab", chromedp.Click(chromedp.ID("tab-html")))
	b.frameReady()
	b.waitJS("banner", `document.getElementById('btn-remote')`)
	// Console messages arrive in order: once a marker logged now has come,
	// so has every message the frame's load logged.
	eval[int](b, `console.error(`+strconv.Quote(marker)+`), 0`)
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the console marker never arrived")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range errs {
		if strings.Contains(s, "Content Security Policy") || strings.Contains(s, "127.0.0.1:1") {
			t.Errorf("console error for a blocked image: %s", s)
		}
	}
}

// TestMutationXSSStaysInert: markup that the HTML parser turns into new
// elements when it reads its own output again (mutation XSS) must not
// reach the frame as an event handler, and javascript:/data: links lose
// their target. The frame's sandbox would still stop them; this checks the
// markup is inert on its own, as mailframe.js promises.
func TestMutationXSSStaysInert(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	const subj = "Mutation XSS"
	html := `<p>hi</p><math><mtext><table><mglyph><style><img src=x onerror="window.top.__xss=1">` +
		`</style></mglyph></table></mtext></math>` +
		`<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">` +
		`<a id="js" href=" javascript:alert(1)">js</a><a id="data" href="data:text/html,<script>alert(1)</script>">data</a>` +
		`<a id="web" href="https://example.com/x">web</a><a id="mail" href="mailto:a@example.com">mail</a>`
	e.send(t, "mallory@evil.example", []string{"bob@example.com"}, mimeMessage("mallory@evil.example", "bob@example.com", subj, "text", html, nil))
	b.open(subj)
	b.do("html tab", chromedp.Click(chromedp.ID("tab-html")))
	b.frameReady()
	// Parse what the frame got, inertly, in the page.
	doc := `new DOMParser().parseFromString(document.querySelector('iframe.msg-frame').srcdoc, 'text/html')`
	if bad := eval[string](b, `[...`+doc+`.querySelectorAll('*')].filter(el => el.tagName === 'SCRIPT' || el.getAttributeNames().some(n => /^on/i.test(n))).map(el => el.outerHTML).join(' | ')`); bad != "" {
		t.Errorf("frame markup parses into active content: %s", bad)
	}
	links := eval[map[string]string](b, `Object.fromEntries([...`+doc+`.querySelectorAll('a[id]')].map(a => [a.id, a.getAttribute('href') || '']))`)
	want := map[string]string{"js": "", "data": "", "web": "https://example.com/x", "mail": "mailto:a@example.com"}
	for id, href := range want {
		if links[id] != href {
			t.Errorf("link %s: href %q, want %q", id, links[id], href)
		}
	}
	b.noXSS("mutation XSS")
}

// TestMissingMessageOffersWayBack: a message that does not exist says so
// and links back to the list, which on a phone is otherwise hidden.
func TestMissingMessageOffersWayBack(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: Still here\n\nhi\n")
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com/message/no-such-id"))
	b.waitJS("error shown", `document.querySelector('#view-pane .error-box')?.textContent.includes('no longer exists')`)
	b.waitJS("back link", `document.getElementById('msg-error-back')`)
	b.do("back", chromedp.Click(chromedp.ID("msg-error-back")))
	b.waitJS("list shown", `location.hash === '#/mailbox/bob%40example.com' && getComputedStyle(document.getElementById('list-pane')).display !== 'none'`)
	b.itemID("Still here")
}

// TestShortcutHelp: "?" lists the keyboard shortcuts in a dialog that
// Escape closes.
func TestShortcutHelp(t *testing.T) {
	t.Parallel()
	_, b := openUI(t)
	b.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	b.key("?")
	b.waitJS("shortcut dialog", `document.querySelector('dialog[open] table.shortcuts')`)
	txt := eval[string](b, `document.querySelector('dialog[open]').textContent`)
	for _, want := range []string{"Next message", "Search", "Compose", "Reply", "Mark read or unread", "Delete the message"} {
		if !strings.Contains(txt, want) {
			t.Errorf("shortcut list lacks %q: %s", want, txt)
		}
	}
	b.key(kb.Escape)
	b.waitJS("dialog closed", `!document.querySelector('dialog[open]')`)
}

// TestSidebarBadgesSayWhatTheyCount: the All mail and Relay queue badges
// read "N unread" and "N pending" to a screen reader, as the mailbox
// badges do, not a bare number.
func TestSidebarBadgesSayWhatTheyCount(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: Count me\n\nhi\n")
	b.waitJS("badge", `document.getElementById('all-unread').textContent.trim() !== ''`)
	if got := eval[string](b, `document.getElementById('nav-all').textContent.replace(/\s+/g, ' ').trim()`); got != "All mail 1 unread" && got != "All mail1 unread" {
		t.Errorf("All mail reads %q, want 'All mail 1 unread'", got)
	}
	if shown := eval[bool](b, `getComputedStyle(document.getElementById('relay-count')).display !== 'none'`); shown {
		t.Error("empty relay badge is shown")
	}
}

// TestRelayQueueFitsAPhone: on a phone the queue is a list of cards, not a
// seven-column table scrolled sideways with rows a screen tall.
func TestRelayQueueFitsAPhone(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	const subj = "Release me"
	e.send(t, "alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\nTo: bob@example.com\nSubject: "+subj+"\n\nhi\n")
	m := e.search(t, url.Values{"subject": {subj}})
	if len(m) != 1 {
		t.Fatalf("search: %+v", m)
	}
	if code := e.api(t, "POST", "/messages/"+url.PathEscape(m[0].ID)+"/release", map[string]any{"to": []string{"ops@real.example", "dev@real.example"}}, nil); code >= 300 {
		t.Fatalf("release: status %d", code)
	}
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(e.http+"/#/relay"))
	b.waitJS("queue row with error", `document.querySelector('.relay-table tbody tr .last-error')?.textContent.includes('421')`)
	b.screenshot("phone-relay")
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("page is %dpx wide on a 390px phone", w)
	}
	if over := eval[int](b, `(w => w.scrollWidth - w.clientWidth)(document.querySelector('.table-wrap'))`); over > 0 {
		t.Errorf("queue scrolls sideways by %dpx", over)
	}
	if hgt := eval[float64](b, `document.querySelector('.relay-table tbody tr').getBoundingClientRect().height`); hgt > 500 {
		t.Errorf("one delivery is %.0fpx tall", hgt)
	}
	if lbl := eval[string](b, `getComputedStyle(document.querySelector('.relay-table tbody td.last-error'), '::before').content`); lbl != `"Last error"` {
		t.Errorf("card cell label %s, want \"Last error\"", lbl)
	}
}

// TestRawViewOfLargeMessage: the Raw tab shows the first MiB of a large
// message and offers the whole source as a download, instead of putting
// megabytes into one text node.
func TestRawViewOfLargeMessage(t *testing.T) {
	t.Parallel()
	e, b := openUI(t)
	const subj = "Big attachment"
	b64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)) // 3 MiB
	var raw strings.Builder
	raw.WriteString("From: alice@example.com\nTo: bob@example.com\nSubject: " + subj + "\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"MIX\"\n\n--MIX\nContent-Type: text/plain\n\nsee attachment\n" +
		"--MIX\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"big.bin\"\nContent-Transfer-Encoding: base64\n\n")
	for len(b64) > 76 {
		raw.WriteString(b64[:76] + "\n")
		b64 = b64[76:]
	}
	raw.WriteString(b64 + "\n--MIX--\n")
	e.send(t, "alice@example.com", []string{"bob@example.com"}, raw.String())
	b.open(subj)
	b.do("raw tab", chromedp.Click(chromedp.ID("tab-raw")))
	b.waitJS("raw shown", `document.querySelector('.msg-raw:not([aria-busy])')`)
	if n := eval[int](b, `document.querySelector('.msg-raw').textContent.length`); n > 1<<20 || n < 1<<19 {
		t.Errorf("raw view holds %d characters, want at most 1 MiB", n)
	}
	if !strings.Contains(eval[string](b, `document.querySelector('.msg-raw').textContent`), "Subject: "+subj) {
		t.Error("raw view lacks the headers")
	}
	if href := eval[string](b, `document.querySelector('.raw-more a[download]')?.getAttribute('href') || ''`); !strings.HasSuffix(href, "/raw") {
		t.Errorf("no download of the whole source next to the cut view (href %q)", href)
	}
}

// TestAttachmentDownloadName: an attachment downloads under its own name,
// non-ASCII included.
func TestAttachmentDownloadName(t *testing.T) {
	// Before the browser: cleanups run last-first, so the directory is
	// removed after Chromium has closed, not while it writes the download.
	downloads := t.TempDir()
	e, b := openUI(t)
	const subj = "Named attachments"
	e.send(t, "alice@example.com", []string{"bob@example.com"}, mimeMessage("alice@example.com", "bob@example.com", subj, "see attachments", "",
		map[string]string{"=?utf-8?q?=C3=9Cbersicht_M=C3=A4rz?=.csv": "a,b\n"}))
	b.open(subj)
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true),
	}); err != nil {
		t.Fatalf("download behavior: %v", err)
	}
	if got := eval[string](b, `document.querySelector('.attachments .att-name').textContent`); got != "Übersicht März.csv" {
		t.Errorf("attachment shown as %q", got)
	}
	evs := chromedp.BrowserEvents(b.ctx, browser.DownloadWillBegin)
	b.do("click attachment", chromedp.Click(chromedp.CSS(`.attachments a.attachment`)))
	for ev, err := range evs {
		if err != nil {
			b.fatalf("download: %v", err)
		}
		if ev.SuggestedFilename != "Übersicht März.csv" {
			t.Errorf("downloads as %q, want %q", ev.SuggestedFilename, "Übersicht März.csv")
		}
		break
	}
}
