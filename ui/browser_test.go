package ui_test

// Browser tests: Chromium, driven by chromedp, against a whole sandbox
// (SMTP in, REST + SSE + this UI out). They skip when Chromium is missing,
// unless MAILSANDBOX_BROWSER=1 (CI), where a missing browser is a failure.
//
// Screenshots go to $MAILSANDBOX_ARTIFACTS (or a temporary directory).
// To run against an already running server instead of an in-process one, set
// MAILSANDBOX_UI_TEST_HTTP (e.g. http://127.0.0.1:8025) and
// MAILSANDBOX_UI_TEST_SMTP (e.g. 127.0.0.1:1025).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// findChromium returns the browser binary, or skips (fails under CI).
func findChromium(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("MAILSANDBOX_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	need.Skip(t, need.Chromium, "no Chromium found (looked for /usr/bin/chromium, chromium, chromium-browser, google-chrome; MAILSANDBOX_CHROMIUM names another)")
	return ""
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MAILSANDBOX_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("artifacts dir: %v", err)
		}
		return d
	}
	return t.TempDir()
}

// env is the system under test.
type env struct {
	http string // base URL, no trailing slash
	smtp string // host:port
}

func newEnv(t *testing.T) env {
	t.Helper()
	if h, s := os.Getenv("MAILSANDBOX_UI_TEST_HTTP"), os.Getenv("MAILSANDBOX_UI_TEST_SMTP"); h != "" && s != "" {
		return env{http: strings.TrimRight(h, "/"), smtp: s}
	}
	return startSandbox(t)
}

// api calls the REST API and decodes the JSON answer into out (if not nil).
func (e env) api(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, e.http+"/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

type summary struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Seen    bool   `json:"seen"`
	From    struct {
		Address string `json:"address"`
	} `json:"from"`
	To []struct {
		Address string `json:"address"`
	} `json:"to"`
}

func (e env) search(t *testing.T, q url.Values) []summary {
	t.Helper()
	var res struct {
		Messages []summary `json:"messages"`
	}
	if code := e.api(t, "GET", "/messages/search?"+q.Encode(), nil, &res); code != 200 {
		t.Fatalf("search %v: status %d", q, code)
	}
	return res.Messages
}

// send submits a message over SMTP with Go's net/smtp, as an application
// would, under a deadline so a stuck server fails the test instead of
// hanging it.
func (e env) send(t *testing.T, from string, to []string, msg string) {
	t.Helper()
	body := []byte(strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n"))
	err := func() error {
		conn, err := net.DialTimeout("tcp", e.smtp, 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		host, _, _ := net.SplitHostPort(e.smtp)
		c, err := smtp.NewClient(conn, host)
		if err != nil {
			return err
		}
		if err := c.Mail(from); err != nil {
			return err
		}
		for _, r := range to {
			if err := c.Rcpt(r); err != nil {
				return err
			}
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return c.Quit()
	}()
	if err != nil {
		t.Fatalf("smtp send: %v", err)
	}
}

// mimeMessage builds a multipart/mixed message with text, HTML and attachments.
func mimeMessage(from, to, subject, text, html string, atts map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%d@ui.test>\nMIME-Version: 1.0\n", from, to, subject, time.Now().Format(time.RFC1123Z), time.Now().UnixNano())
	b.WriteString("Content-Type: multipart/mixed; boundary=\"MIX\"\n\n--MIX\nContent-Type: multipart/alternative; boundary=\"ALT\"\n\n")
	b.WriteString("--ALT\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n")
	qp := func(s string) string {
		var w strings.Builder
		q := quotedprintable.NewWriter(&w)
		io.WriteString(q, s)
		q.Close()
		return w.String()
	}
	b.WriteString(qp(text) + "\n")
	if html != "" {
		b.WriteString("--ALT\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" + qp(html) + "\n")
	}
	b.WriteString("--ALT--\n")
	for name, content := range atts {
		fmt.Fprintf(&b, "--MIX\nContent-Type: text/plain; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\nContent-Transfer-Encoding: base64\n\n%s\n", name, name, base64.StdEncoding.EncodeToString([]byte(content)))
	}
	b.WriteString("--MIX--\n")
	return b.String()
}

// tab wraps a chromedp context with test helpers.
type tab struct {
	t         *testing.T
	artifacts string // where screenshots go
	ctx       context.Context
	base      string
	mu        sync.Mutex
	dialogs   []string
	errs      []string
}

// browsers is the one Chromium the package's tests share: starting one
// took ~2 s of CPU, 33 times a run. Each test opens a tab of its own on a
// server of its own (its own port, so its own origin: no storage or cache
// is shared), and its tab closes with the test.
var browsers sharedBrowser

type sharedBrowser struct {
	mu     sync.Mutex
	path   string
	ctx    context.Context // the browser's first tab; tests' tabs derive from it
	cancel func()
}

// TestMain closes the shared browser after the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	browsers.close()
	os.Exit(code)
}

// get returns the running browser, starting it (again, if it went away).
func (s *sharedBrowser) get(chromium string) (context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil && s.path == chromium && s.ctx.Err() == nil {
		return s.ctx, nil
	}
	if s.cancel != nil {
		s.cancel()
		s.ctx, s.cancel = nil, nil
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		// IsolateSandboxedIframes off: the sandboxed message frame then paints
		// with the page, so screenshots show it (the sandbox flags still apply).
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,IsolateSandboxedIframes"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Env("TZ=UTC", "LANG="+chromiumLang),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancelC()
		cancelA()
		return nil, err
	}
	s.path, s.ctx, s.cancel = chromium, ctx, func() { cancelC(); cancelA() }
	return ctx, nil
}

func (s *sharedBrowser) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
}

func newTab(t *testing.T, chromium, base, artifacts string) *tab {
	t.Helper()
	bctx, err := browsers.get(chromium)
	if err != nil {
		need.Skip(t, need.Chromium, fmt.Sprintf("Chromium at %s does not start: %v", chromium, err))
	}
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab in the shared Chromium: %v", err)
	}
	tb := &tab{t: t, ctx: ctx, base: base, artifacts: artifacts}
	// Any dialog (alert/confirm/prompt) is a failure: the UI uses none, and
	// hostile mail must not open one. Dismiss it so the page does not stall.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, string(ev.Type)+": "+ev.Message)
			tb.mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() {
				tb.mu.Lock()
				tb.errs = append(tb.errs, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				tb.mu.Unlock()
			}
		}
	}()
	return tb
}

// do runs actions with a per-step deadline.
func (b *tab) do(what string, acts ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, acts...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is true in the page. (chromedp.Poll compiles its
// predicate with new Function, which the UI's CSP rightly forbids.)
func (b *tab) waitJS(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second) // generous: CI machines are busy
	defer cancel()
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && v {
			return
		}
		select {
		case <-ctx.Done():
			b.fatalf("waiting for %s (%s): %v (last error %v)\npage then: %s", what, expr, ctx.Err(), err, b.pageState())
		case <-tick.C:
		}
	}
}

// clickJS waits for sel to match and clicks the element in the page, in
// one evaluation: for parts that re-render on server events (the sidebar,
// the tag editor), where a node found over the DevTools protocol can be
// gone by the time it is clicked ("Could not find node with given id").
func (b *tab) clickJS(what, sel string) {
	b.t.Helper()
	b.waitJS(what, `((el) => el ? (el.click(), true) : false)(document.querySelector(`+strconv.Quote(sel)+`))`)
}

// pageState describes the page for a failure message: where it is, what
// has focus, what the list and search box hold, and any open dialog.
func (b *tab) pageState() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		hash: location.hash,
		focus: document.activeElement && (document.activeElement.tagName + '#' + document.activeElement.id),
		search: (document.getElementById('search-input') || {}).value,
		list: [...document.querySelectorAll('#message-list a.msg-item')].map(a => a.textContent.slice(0, 60)),
		busy: (document.getElementById('message-list') || {hasAttribute: () => false}).hasAttribute('aria-busy'),
		dialogs: [...document.querySelectorAll('dialog[open]')].map(d => d.textContent.slice(0, 80)),
		toast: (document.getElementById('toast') || {}).textContent,
	})`))
	if err != nil {
		return "unknown: " + err.Error()
	}
	return s
}

func (b *tab) fatalf(format string, args ...any) {
	b.t.Helper()
	b.screenshot("failure-" + strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name()))
	b.t.Fatalf(format, args...)
}

func (b *tab) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.artifacts, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

func (b *tab) colorScheme(scheme string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		b.fatalf("emulate %s: %v", scheme, err)
	}
}

func (b *tab) key(k string) {
	b.t.Helper()
	b.do("key "+k, chromedp.KeyEvent(k))
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// itemID waits for a list item with subject subj and returns its id.
// search puts q in the search box and submits the form, as Enter does.
func (b *tab) search(q string) {
	b.t.Helper()
	b.do("search "+q, chromedp.Evaluate[chromedp.Void](`(() => {
		const i = document.getElementById('search-input');
		i.focus();
		i.value = `+js(q)+`;
		document.getElementById('search-form').requestSubmit();
	})()`))
	b.waitJS("route of "+q, `decodeURIComponent(location.hash) === '#/search/' + `+js(q))
}

func (b *tab) itemID(subj string) string {
	b.t.Helper()
	expr := `[...document.querySelectorAll('#message-list a.msg-item')].find(a => a.querySelector('.subject-text').textContent === ` + js(subj) + `)`
	b.waitJS("list item "+subj, `!document.getElementById('message-list').hasAttribute('aria-busy') && `+expr)
	return eval[string](b, expr+`.dataset.id`)
}

func (b *tab) open(subj string) string {
	b.t.Helper()
	id := b.itemID(subj)
	// A live update may replace the list while we click: retry on a stale node.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#message-list a.msg-item[data-id="`+id+`"]`)))
		cancel()
		if err == nil {
			break
		}
		if i == 2 || !strings.Contains(err.Error(), "node") {
			b.fatalf("open %s: %v", subj, err)
		}
	}
	b.waitJS("message view", `document.querySelector('article.message')?.dataset.id === `+js(id))
	return id
}

// frameReady waits until the message iframe has loaded and painted.
func (b *tab) frameReady() {
	b.t.Helper()
	b.waitJS("message frame loaded", `document.querySelector('iframe.msg-frame')?.dataset.loaded === 'true'`)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	// Two animation frames: the out-of-process frame has been composited.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))`, chromedp.EvalAwaitPromise)); err != nil {
		b.t.Logf("frame paint: %v", err)
	}
}

func (b *tab) noXSS(where string) {
	b.t.Helper()
	if v := eval[string](b, `typeof window.__xss`); v != "undefined" {
		b.fatalf("%s: script from mail ran: window.__xss is %s", where, eval[string](b, `String(window.__xss)`))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		b.t.Fatalf("%s: dialogs opened: %q", where, b.dialogs)
	}
}

func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	artifacts := artifactsDir(t)
	e := newEnv(t)
	b := newTab(t, chromium, e.http, artifacts)
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range b.errs {
			t.Errorf("uncaught exception in the UI: %s", s)
		}
	})

	b.colorScheme("light")
	b.do("open UI",
		chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(e.http+"/"),
		chromedp.WaitVisible(chromedp.ID("message-list")),
	)
	// The SSE stream is connected once the live dot turns on.
	b.waitJS("live updates connected", `document.getElementById('live-dot').classList.contains('on')`)

	const subj = "Quarterly report from the browser test"
	const textBody = "Hello Bob,\nplease find the report attached.\nDashboard: https://example.com/report?q=1.\nRegards, Alice"
	const csv = "region,total\nnorth,42\nsouth,17\n"
	var id string

	t.Run("live", func(t *testing.T) {
		b.t = t
		e.send(t, "alice@example.com", []string{"bob@example.com"}, mimeMessage(
			"Alice Example <alice@example.com>", "Bob <bob@example.com>", subj, textBody,
			`<html><body><h1 style="color:#4338ca">Quarterly report</h1><p>Hello <b>Bob</b>, the numbers are in.</p><p><a href="https://example.com/report">Open the dashboard</a></p></body></html>`,
			map[string]string{"report.csv": csv}))
		// No reload: the message must arrive through SSE.
		b.itemID(subj)
		b.waitJS("mailbox in sidebar with unread count", `[...document.querySelectorAll('#mailbox-list a')].some(a => a.dataset.address === 'bob@example.com' && a.querySelector('.badge'))`)
		b.waitJS("unread style", `document.querySelector('#message-list a.msg-item.unread')`)
	})

	t.Run("open", func(t *testing.T) {
		b.t = t
		b.do("open mailbox", chromedp.Click(chromedp.CSS(`#mailbox-list a[data-address="bob@example.com"]`)))
		b.waitJS("mailbox list", `location.hash === '#/mailbox/bob%40example.com' && document.getElementById('list-title').textContent === 'bob@example.com' && !document.getElementById('message-list').hasAttribute('aria-busy')`)
		id = b.open(subj)
		if h := eval[string](b, `location.hash`); h != "#/mailbox/bob%40example.com/message/"+url.PathEscape(id) {
			t.Errorf("message route %q", h)
		}
		if got := eval[string](b, `document.getElementById('msg-subject').textContent`); got != subj {
			t.Errorf("subject %q", got)
		}
		if got := eval[string](b, `document.querySelector('.from-name').textContent`); got != "Alice Example" {
			t.Errorf("from %q", got)
		}
		// HTML tab by default, sandboxed, with a CSP and new-tab links.
		sandbox := eval[string](b, `document.querySelector('iframe.msg-frame').getAttribute('sandbox')`)
		if strings.Contains(sandbox, "allow-scripts") || strings.Contains(sandbox, "allow-same-origin") {
			t.Errorf("iframe sandbox %q", sandbox)
		}
		srcdoc := eval[string](b, `document.querySelector('iframe.msg-frame').srcdoc`)
		for _, want := range []string{`http-equiv="Content-Security-Policy"`, "Quarterly report", `target="_blank"`, `rel="noopener noreferrer"`} {
			if !strings.Contains(srcdoc, want) {
				t.Errorf("srcdoc lacks %s", want)
			}
		}
		// Opening marks it read, in the list and on the server.
		b.waitJS("read in list", `!document.querySelector('#message-list a.msg-item[data-id=`+js(id)+`]').classList.contains('unread')`)
		b.waitJS("no unread badge", `!document.querySelector('#mailbox-list a[data-address="bob@example.com"] .badge')`)
		if m := e.search(t, url.Values{"subject": {subj}}); len(m) != 1 || !m[0].Seen {
			t.Errorf("after open, REST says %+v", m)
		}
		b.frameReady()
		b.screenshot("light-message")
	})

	t.Run("tabs", func(t *testing.T) {
		b.t = t
		b.do("text tab", chromedp.Click(chromedp.ID("tab-text")))
		b.waitJS("text body", `document.querySelector('#msg-panel .msg-text')?.textContent.includes('please find the report attached')`)
		if href := eval[string](b, `document.querySelector('#msg-panel .msg-text a')?.getAttribute('href') || ''`); href != "https://example.com/report?q=1" {
			t.Errorf("text link %q", href)
		}
		b.do("headers tab", chromedp.Click(chromedp.ID("tab-headers")))
		b.waitJS("headers table", `[...document.querySelectorAll('.headers-table tbody th')].some(th => th.textContent.toLowerCase() === 'subject')`)
		b.do("raw tab", chromedp.Click(chromedp.ID("tab-raw")))
		b.waitJS("raw source", `document.querySelector('.msg-raw:not([aria-busy])')?.textContent.includes('Content-Disposition: attachment; filename="report.csv"')`)
		b.screenshot("light-raw")
		// Arrow keys move between tabs (ARIA tabs pattern).
		b.do("focus raw tab", chromedp.Focus(chromedp.ID("tab-raw")))
		b.key(kb.ArrowLeft)
		b.waitJS("headers tab via keyboard", `document.getElementById('tab-headers').getAttribute('aria-selected') === 'true'`)
		b.do("html tab", chromedp.Click(chromedp.ID("tab-html")))
		b.waitJS("html frame", `document.querySelector('#msg-panel iframe.msg-frame')`)
	})

	t.Run("attachment", func(t *testing.T) {
		b.t = t
		b.waitJS("attachment chip", `[...document.querySelectorAll('.attachments a.attachment')].some(a => a.textContent.includes('report.csv'))`)
		label := eval[string](b, `document.querySelector('.attachments a.attachment').textContent`)
		if !strings.Contains(label, "report.csv") || !strings.Contains(label, " B") {
			t.Errorf("attachment label %q lacks name or size", label)
		}
		dir := t.TempDir()
		progress := chromedp.BrowserEvents(b.ctx, browser.DownloadProgress)
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		defer cancel()
		if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
		}); err != nil {
			t.Fatalf("download behavior: %v", err)
		}
		b.do("click attachment", chromedp.Click(chromedp.CSS(`.attachments a.attachment`)))
		for ev, err := range progress {
			if err != nil {
				b.fatalf("download: %v", err)
			}
			if ev.State == browser.DownloadProgressStateCanceled {
				b.fatalf("download canceled")
			}
			if ev.State != browser.DownloadProgressStateCompleted {
				continue
			}
			got, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			if strings.ReplaceAll(string(got), "\r\n", "\n") != csv {
				t.Errorf("downloaded %q, want %q", got, csv)
			}
			break
		}
		// The .eml link points at the raw source and downloads.
		href := eval[string](b, `document.getElementById('btn-eml').getAttribute('href')`)
		if !strings.HasSuffix(href, "/raw") || !eval[bool](b, `document.getElementById('btn-eml').hasAttribute('download')`) {
			t.Errorf(".eml link %q", href)
		}
	})

	t.Run("read", func(t *testing.T) {
		b.t = t
		b.do("mark unread", chromedp.Click(chromedp.ID("btn-seen")))
		b.waitJS("unread in list", `document.querySelector('#message-list a.msg-item[data-id=`+js(id)+`]').classList.contains('unread')`)
		b.waitJS("unread badge", `document.querySelector('#mailbox-list a[data-address="bob@example.com"] .badge')`)
		if m := e.search(t, url.Values{"subject": {subj}}); len(m) != 1 || m[0].Seen {
			t.Errorf("after mark unread, REST says %+v", m)
		}
		b.do("mark read", chromedp.Click(chromedp.ID("btn-seen")))
		b.waitJS("read in list", `!document.querySelector('#message-list a.msg-item[data-id=`+js(id)+`]').classList.contains('unread')`)
		if m := e.search(t, url.Values{"subject": {subj}}); len(m) != 1 || !m[0].Seen {
			t.Errorf("after mark read, REST says %+v", m)
		}
	})

	t.Run("search", func(t *testing.T) {
		b.t = t
		e.send(t, "carol@example.com", []string{"dave@example.com"}, mimeMessage("Carol <carol@example.com>", "dave@example.com", "Lunch on Friday?", "Shall we meet at noon?", "", nil))
		b.key("/")
		b.waitJS("search focused", `document.activeElement === document.getElementById('search-input')`)
		// (CDP delivers the "/" character separately from its keydown, so
		// clear what it typed before typing the query.)
		b.do("type search", chromedp.Evaluate[chromedp.Void](`document.getElementById('search-input').value = ''`), chromedp.SendKeys(chromedp.ID("search-input"), "subject:quarterly\r"))
		b.waitJS("search route", `location.hash.startsWith('#/search/')`)
		b.waitJS("search results", `document.querySelectorAll('#message-list a.msg-item').length === 1`)
		b.itemID(subj)
		// Further queries replace the box's text and submit in one step: typed
		// after a clear, a key could land before the list's route change of
		// the previous query had settled, which rewrites the box.
		b.search("from:carol")
		b.waitJS("from search", `document.querySelectorAll('#message-list a.msg-item').length === 1 && document.querySelector('#message-list .subject').textContent.includes('Lunch')`)
		b.search("to:nobody-at-all@example.com")
		b.waitJS("empty result", `!document.getElementById('list-empty').hidden && document.querySelectorAll('#message-list a.msg-item').length === 0`)
		b.search("since:2000-01-01 lunch")
		b.waitJS("date search", `document.querySelectorAll('#message-list a.msg-item').length === 1 && document.querySelector('#message-list .subject-text').textContent === 'Lunch on Friday?'`)
		b.do("all mail", chromedp.Click(chromedp.ID("nav-all")))
		b.waitJS("all mail list", `document.querySelectorAll('#message-list a.msg-item').length >= 2`)
	})

	t.Run("keyboard", func(t *testing.T) {
		b.t = t
		b.do("focus body", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
		b.key("j")
		b.waitJS("j opens first", `location.hash.includes('/message/') && document.querySelector('article.message')`)
		first := eval[string](b, `document.querySelector('article.message').dataset.id`)
		b.key("j")
		b.waitJS("j opens next", `document.querySelector('article.message')?.dataset.id !== `+js(first))
		b.key("k")
		b.waitJS("k goes back", `document.querySelector('article.message')?.dataset.id === `+js(first))
	})

	t.Run("release", func(t *testing.T) {
		b.t = t
		b.do("all mail", chromedp.Navigate(e.http+"/#/all"))
		b.open(subj)
		b.do("release", chromedp.Click(chromedp.ID("btn-release")))
		b.waitJS("release dialog", `document.querySelector('dialog[open] #release-to')`)
		b.do("recipients", chromedp.SendKeys(chromedp.ID("release-to"), "someone@real.example"), chromedp.Click(chromedp.CSS(`dialog[open] button[value="ok"]`)))
		b.waitJS("dialog closed", `!document.querySelector('dialog[open]')`)
		var q struct {
			Deliveries []struct {
				ID         json.Number `json:"id"`
				MessageID  string      `json:"message_id"`
				Recipients []string    `json:"recipients"`
			} `json:"deliveries"`
		}
		if code := e.api(t, "GET", "/relay/queue", nil, &q); code != 200 {
			t.Fatalf("relay queue: status %d", code)
		}
		found := false
		for _, d := range q.Deliveries {
			if d.MessageID == id && strings.Contains(strings.Join(d.Recipients, ","), "someone@real.example") {
				found = true
			}
		}
		if !found {
			t.Fatalf("released message not in queue: %+v", q.Deliveries)
		}
		b.do("relay page", chromedp.Click(chromedp.ID("nav-relay")))
		b.waitJS("queue row", `[...document.querySelectorAll('.relay-table tbody tr')].some(tr => tr.textContent.includes('someone@real.example'))`)
		b.screenshot("light-relay")
		// The row names its message by subject, as text.
		if n := eval[int](b, `[...document.querySelectorAll('.relay-table tbody tr a[href*="/message/"]')].filter(a => a.textContent === `+strconv.Quote(subj)+`).length`); n == 0 {
			t.Errorf("no queue row links to its message by the subject %q", subj)
		}
		if txt := eval[string](b, `document.querySelector('.relay-table tbody tr .last-error').textContent`); !strings.Contains(txt, "421") {
			t.Errorf("last error shown as %q", txt)
		}
		// Clicked in the page: the table re-renders on queue events, and a
		// node found over the DevTools protocol can be gone by the time it
		// is clicked ("Could not find node with given id").
		b.do("retry", chromedp.Evaluate[chromedp.Void](`document.querySelector('.relay-table tbody tr button:not(.danger-text)').click()`))
		b.waitJS("retry acknowledged", `document.getElementById('toast').textContent === 'Retrying delivery'`)
		n := eval[int](b, `document.querySelectorAll('.relay-table tbody tr').length`)
		b.do("drop", chromedp.Evaluate[chromedp.Void](`document.querySelector('.relay-table tbody tr button.danger-text').click()`))
		b.waitJS("confirm dialog", `document.querySelector('dialog[open] button[value="ok"]')`)
		b.do("confirm drop", chromedp.Click(chromedp.CSS(`dialog[open] button[value="ok"]`)))
		b.waitJS("row dropped", `document.querySelectorAll('.relay-table tbody tr').length === `+fmt.Sprint(n-1)+` || document.querySelector('.relay .empty')`)
	})

	t.Run("compose", func(t *testing.T) {
		b.t = t
		b.do("compose", chromedp.Click(chromedp.ID("compose-btn")))
		b.waitJS("compose form", `document.getElementById('compose-form')`)
		b.do("fill",
			chromedp.Evaluate[chromedp.Void](`document.getElementById('compose-from').value = ''`),
			chromedp.SendKeys(chromedp.ID("compose-from"), "tester@example.com"),
			chromedp.SendKeys(chromedp.ID("compose-to"), "erin@example.com"),
			chromedp.SendKeys(chromedp.ID("compose-subject"), "Composed in the UI"),
			chromedp.SendKeys(chromedp.ID("compose-body"), "Written by the browser test."),
		)
		b.screenshot("light-compose")
		b.do("send", chromedp.Click(chromedp.ID("compose-send")))
		b.waitJS("sent message opens", `document.getElementById('msg-subject')?.textContent === 'Composed in the UI'`)
		m := e.search(t, url.Values{"subject": {"Composed in the UI"}})
		if len(m) != 1 || m[0].From.Address != "tester@example.com" || len(m[0].To) != 1 || m[0].To[0].Address != "erin@example.com" {
			t.Errorf("composed message in REST: %+v", m)
		}
		b.itemID("Composed in the UI") // shows up live in the list
	})

	t.Run("reply", func(t *testing.T) {
		b.t = t
		b.do("all mail", chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com"))
		b.open(subj)
		b.do("reply", chromedp.Click(chromedp.ID("btn-reply")))
		b.waitJS("reply form", `document.getElementById('compose-subject')?.value === 'Re: `+subj+`'`)
		if to := eval[string](b, `document.getElementById('compose-to').value`); !strings.Contains(to, "alice@example.com") {
			t.Errorf("reply to %q", to)
		}
		if from := eval[string](b, `document.getElementById('compose-from').value`); from != "bob@example.com" {
			t.Errorf("reply from %q", from)
		}
		if body := eval[string](b, `document.getElementById('compose-body').value`); !strings.Contains(body, "> please find the report attached.") {
			t.Errorf("reply body lacks quote: %q", body)
		}
		b.do("send reply", chromedp.SendKeys(chromedp.ID("compose-body"), "Thanks!"), chromedp.Click(chromedp.ID("compose-send")))
		b.waitJS("reply sent", `document.getElementById('msg-subject')?.textContent === 'Re: `+subj+`'`)
		if m := e.search(t, url.Values{"subject": {"Re: " + subj}, "to": {"alice@example.com"}}); len(m) != 1 {
			t.Errorf("reply in REST: %+v", m)
		}
		// Forward prefills subject and carries the attachment along.
		b.do("back to original", chromedp.Navigate(e.http+"/#/all"))
		b.open(subj)
		b.do("forward", chromedp.Click(chromedp.ID("btn-forward")))
		b.waitJS("forward form", `document.getElementById('compose-subject')?.value === 'Fwd: `+subj+`' && document.querySelector('.fwd input[type=checkbox]:checked')`)
	})

	t.Run("delete", func(t *testing.T) {
		b.t = t
		b.do("all mail", chromedp.Navigate(e.http+"/#/all"))
		del := b.open("Lunch on Friday?")
		b.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
		b.key(kb.Delete)
		b.waitJS("gone from list", `!document.querySelector('#message-list a.msg-item[data-id=`+js(del)+`]')`)
		if code := e.api(t, "GET", "/messages/"+url.PathEscape(del), nil, nil); code != 404 {
			t.Errorf("deleted message: GET status %d, want 404", code)
		}
		// The delete button works too.
		del2 := b.open("Composed in the UI")
		b.do("delete button", chromedp.Click(chromedp.ID("btn-delete")))
		b.waitJS("gone from list", `!document.querySelector('#message-list a.msg-item[data-id=`+js(del2)+`]')`)
		if code := e.api(t, "GET", "/messages/"+url.PathEscape(del2), nil, nil); code != 404 {
			t.Errorf("deleted message: GET status %d, want 404", code)
		}
		// Empty a whole mailbox, after confirming in the page's own dialog.
		e.send(t, "frank@example.com", []string{"gina@example.com"}, mimeMessage("frank@example.com", "gina@example.com", "For Gina", "Hi Gina", "", nil))
		b.do("gina", chromedp.Navigate(e.http+"/#/mailbox/gina%40example.com"))
		b.itemID("For Gina")
		b.do("empty mailbox", chromedp.Click(chromedp.ID("list-clear")))
		b.waitJS("confirm dialog", `document.querySelector('dialog[open] button[value="ok"]')`)
		b.do("confirm", chromedp.Click(chromedp.CSS(`dialog[open] button[value="ok"]`)))
		b.waitJS("mailbox empty", `!document.getElementById('list-empty').hidden && document.querySelectorAll('#message-list a.msg-item').length === 0`)
		if m := e.search(t, url.Values{"to": {"gina@example.com"}}); len(m) != 0 {
			t.Errorf("after emptying the mailbox REST still has %+v", m)
		}
	})

	t.Run("images", func(t *testing.T) {
		b.t = t
		// A "remote" image host on loopback that records every request.
		hits := make(chan string, 16)
		pixel := pngBytes(t, 1, color.RGBA{0, 0, 0, 0})
		remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case hits <- r.URL.Path:
			default:
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(pixel)
		}))
		defer remote.Close()
		logo := pngBytes(t, 48, color.RGBA{0x43, 0x38, 0xca, 0xff})
		raw := "From: Newsletter <news@example.com>\nTo: bob@example.com\nSubject: Newsletter with images\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/related; boundary=\"REL\"\n\n--REL\nContent-Type: text/html; charset=utf-8\n\n" +
			`<html><body><p><img src="cid:logo@ui.test" alt="logo" width="48" height="48"></p><h2>This week</h2>` +
			`<p>Tracked pixel below.</p><img src="` + remote.URL + `/pixel.png" width="1" height="1" alt=""></body></html>` +
			"\n--REL\nContent-Type: image/png\nContent-ID: <logo@ui.test>\nContent-Disposition: inline; filename=\"logo.png\"\nContent-Transfer-Encoding: base64\n\n" +
			base64.StdEncoding.EncodeToString(logo) + "\n--REL--\n"
		e.send(t, "news@example.com", []string{"bob@example.com"}, raw)
		b.do("mailbox", chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com"))
		b.open("Newsletter with images")
		b.do("html tab", chromedp.Click(chromedp.ID("tab-html")))
		b.frameReady()
		select {
		case p := <-hits:
			t.Fatalf("remote image %s loaded before the user allowed it", p)
		default:
		}
		// The cid: image points at the part URL, which serves the PNG.
		srcdoc := eval[string](b, `document.querySelector('iframe.msg-frame').srcdoc`)
		i := strings.Index(srcdoc, "/api/v1/messages/")
		if i < 0 || !strings.Contains(srcdoc, "/parts/") {
			t.Fatalf("cid image not rewritten to a part URL: %s", srcdoc)
		}
		partURL := srcdoc[i:]
		partURL = partURL[:strings.IndexAny(partURL, `"' `)]
		res, err := http.Get(e.http + partURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(body, logo) {
			t.Errorf("inline part %s: status %d, %d bytes (want the %d-byte logo)", partURL, res.StatusCode, len(body), len(logo))
		}
		b.screenshot("light-images-blocked")
		b.do("load remote images", chromedp.Click(chromedp.ID("btn-remote")))
		select {
		case p := <-hits:
			if p != "/pixel.png" {
				t.Errorf("remote request %s", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("remote image not loaded after the user allowed it")
		}
		b.noXSS("images")
	})

	t.Run("xss", func(t *testing.T) {
		b.t = t
		const payloadSubj = `<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=1</script>`
		const payloadName = `<script>window.__xss=2;alert(2)</script> Mallory`
		const payloadFile = `<img src=x onerror=window.__xss=3;alert(3)>.txt`
		html := `<html><head><meta http-equiv="refresh" content="0;url=javascript:window.top.__xss=4"><base href="javascript:alert(5)//"></head>` +
			`<body onload="window.top.__xss=5;alert(5)"><script>window.__xss=6;window.top.__xss=6;alert(6)</script>` +
			`<img src=x onerror="window.top.__xss=7;alert(7)"><svg onload="alert(8)"></svg>` +
			`<a id="js" href="javascript:window.top.__xss=9">click</a><iframe srcdoc="<script>parent.parent.__xss=10</script>"></iframe>` +
			`<form action="javascript:alert(11)"><button>go</button></form><img src="http://127.0.0.1:1/track.gif">` +
			`<p>hostile body</p></body></html>`
		e.send(t, "mallory@evil.example", []string{"bob@example.com"}, mimeMessage(
			`"`+payloadName+`" <mallory@evil.example>`, "bob@example.com", payloadSubj, "<script>window.__xss=12</script> text", html,
			map[string]string{payloadFile: "x"}))
		b.do("mailbox", chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com"))
		b.itemID(payloadSubj)
		b.noXSS("list")
		xid := b.open(payloadSubj)
		// Mail data is text, not markup, in the page.
		if got := eval[string](b, `document.getElementById('msg-subject').textContent`); got != payloadSubj {
			t.Errorf("subject shown as %q", got)
		}
		if n := eval[int](b, `document.querySelectorAll('body img, body script:not([type=module]), body svg [onload], [onerror], [onload]').length`); n != 0 {
			t.Errorf("%d hostile elements made it into the page DOM", n)
		}
		if got := eval[string](b, `document.querySelector('.attachments .att-name').textContent`); got != payloadFile {
			t.Errorf("attachment name shown as %q", got)
		}
		for _, tabID := range []string{"tab-html", "tab-text", "tab-headers", "tab-raw", "tab-html"} {
			b.do(tabID, chromedp.Click(chromedp.ID(tabID)))
			b.waitJS(tabID+" shown", `document.getElementById('`+tabID+`').getAttribute('aria-selected') === 'true'`)
		}
		// Remote images: blocked until asked for, then allowed only by the frame's CSP.
		b.waitJS("remote image banner", `document.getElementById('btn-remote')`)
		b.do("load remote images", chromedp.Click(chromedp.ID("btn-remote")))
		b.waitJS("remote allowed", `document.querySelector('iframe.msg-frame').srcdoc.includes('img-src') && document.querySelector('iframe.msg-frame').srcdoc.includes(' http: https:') && !document.getElementById('btn-remote')`)
		b.noXSS("message view")

		// Again without the page's CSP: the DOM code and the iframe sandbox
		// alone must keep hostile mail inert.
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		if _, err := chromedp.Call(ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
			t.Fatalf("bypass CSP: %v", err)
		}
		b.do("reload without CSP", chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com/message/"+url.PathEscape(xid)), chromedp.Reload())
		b.waitJS("message view", `document.querySelector('article.message')?.dataset.id === `+js(xid))
		for _, tabID := range []string{"tab-text", "tab-headers", "tab-raw", "tab-html"} {
			b.do(tabID, chromedp.Click(chromedp.ID(tabID)))
			b.waitJS(tabID+" shown", `document.getElementById('`+tabID+`').getAttribute('aria-selected') === 'true'`)
		}
		b.do("all mail", chromedp.Click(chromedp.ID("nav-all")))
		b.waitJS("list", `document.querySelector('#message-list a.msg-item')`)
		b.noXSS("without CSP")
		ctx2, cancel2 := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel2()
		if _, err := chromedp.Call(ctx2, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: false}); err != nil {
			t.Fatalf("restore CSP: %v", err)
		}
	})

	t.Run("screenshots", func(t *testing.T) {
		b.t = t
		b.do("light", chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com"), chromedp.Reload())
		b.open(subj)
		b.do("html tab", chromedp.Click(chromedp.ID("tab-html")))
		b.frameReady()
		b.screenshot("light")
		b.colorScheme("dark")
		b.waitJS("dark theme", `matchMedia('(prefers-color-scheme: dark)').matches`)
		b.frameReady()
		b.screenshot("dark")
		b.do("relay dark", chromedp.Click(chromedp.ID("nav-relay")))
		b.waitJS("relay page", `document.querySelector('.relay')`)
		b.screenshot("dark-relay")
		b.colorScheme("light")
		b.do("narrow", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(e.http+"/#/mailbox/bob%40example.com"))
		b.itemID(subj)
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("narrow layout overflows: scrollWidth %d", w)
		}
		b.screenshot("narrow-list")
		b.open(subj)
		b.waitJS("list hidden on phone", `getComputedStyle(document.getElementById('list-pane')).display === 'none'`)
		b.frameReady()
		b.screenshot("narrow-message")
		b.do("back", chromedp.Click(chromedp.ID("btn-back")))
		b.waitJS("list again", `getComputedStyle(document.getElementById('list-pane')).display !== 'none'`)
		b.do("menu", chromedp.Click(chromedp.ID("nav-toggle")))
		b.waitJS("drawer open", `document.body.classList.contains('nav-open') && getComputedStyle(document.getElementById('sidebar')).transform === 'none'`)
		b.screenshot("narrow-menu")
		b.key(kb.Escape)
		b.waitJS("drawer closed", `!document.body.classList.contains('nav-open')`)
		b.noXSS("end")
		t.Logf("screenshots in %s", artifacts)
	})
}

func pngBytes(t *testing.T, size int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			cc := c
			if size > 8 && (x-size/2)*(x-size/2)+(y-size/2)*(y-size/2) > size*size/4 {
				cc = color.RGBA{0xff, 0xff, 0xff, 0xff}
			}
			img.Set(x, y, cc)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chromiumLang is the browser's locale. C.UTF-8 exists on every glibc
// system; a locale that is not installed (en_US.UTF-8 on a bare Debian)
// leaves Chromium in ASCII, and it then saves a download with a non-ASCII
// name as "download".
const chromiumLang = "C.UTF-8"
