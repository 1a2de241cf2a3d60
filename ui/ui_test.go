package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(Options{}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func checkSecurityHeaders(t *testing.T, res *http.Response, path string) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: header %s = %q, want %q", path, k, got, v)
		}
	}
}

func TestServesFiles(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="js/main.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>mailsandbox</title>"},
		{"/app.css", "text/css; charset=utf-8", "prefers-color-scheme: dark"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
		{"/js/main.js", "text/javascript; charset=utf-8", "import"},
		{"/js/api.js", "text/javascript; charset=utf-8", "/api/v1"},
		{"/js/dom.js", "text/javascript; charset=utf-8", "export function h("},
		{"/js/format.js", "text/javascript; charset=utf-8", "export function"},
		{"/js/mailframe.js", "text/javascript; charset=utf-8", "Content-Security-Policy"},
		{"/js/message.js", "text/javascript; charset=utf-8", "sandbox"},
		{"/js/compose.js", "text/javascript; charset=utf-8", "export function renderCompose"},
		{"/js/relay.js", "text/javascript; charset=utf-8", "export async function renderRelay"},
		{"/js/ui.js", "text/javascript; charset=utf-8", "export function toast"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res, body := get(t, srv, http.MethodGet, tc.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body lacks %q", tc.contains)
			}
			checkSecurityHeaders(t, res, tc.path)
		})
	}
}

// Every module is preloaded from index.html, so the browser fetches them in
// parallel instead of discovering them import by import.
func TestModulesPreloaded(t *testing.T) {
	t.Parallel()
	index, err := fs.ReadFile(staticFS, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := fs.ReadDir(staticFS, "static/js")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if m.Name() == "main.js" {
			continue
		}
		if !strings.Contains(string(index), `<link rel="modulepreload" href="js/`+m.Name()+`">`) {
			t.Errorf("index.html does not preload /js/%s", m.Name())
		}
	}
}

// Every embedded JavaScript module imported anywhere must exist, or the app
// breaks at load time in the browser.
func TestModuleImportsResolve(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	imp := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]+from\s+)?['"](\./[^'"]+)['"]`)
	err := fs.WalkDir(staticFS, "static/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(staticFS, p)
		if err != nil {
			return err
		}
		for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
			target := "/js/" + strings.TrimPrefix(m[1], "./")
			res, _ := get(t, srv, http.MethodGet, target, nil)
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s: status %d", p, target, res.StatusCode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, p := range []string{"/nope", "/js/nope.js", "/static/index.html", "/js/", "/js", "/index.htm", "/app.css/x", "/../ui.go", "/ui.go"} {
		res, _ := get(t, srv, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.StatusCode)
		}
		checkSecurityHeaders(t, res, p)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		res, _ := get(t, srv, m, "/", nil)
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /: status %d, want 405", m, res.StatusCode)
		}
		checkSecurityHeaders(t, res, m+" /")
	}
	res, body := get(t, srv, http.MethodHead, "/js/main.js", nil)
	if res.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD: status %d, body %d bytes", res.StatusCode, len(body))
	}
}

func TestETagRevalidation(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	res, _ := get(t, srv, http.MethodGet, "/app.css", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q", cc)
	}
	res, _ = get(t, srv, http.MethodGet, "/app.css", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: status %d, want 304", res.StatusCode)
	}
	checkSecurityHeaders(t, res, "304")
}

func TestCSPIsStrict(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-eval") || regexp.MustCompile(`script-src[^;]*unsafe-inline`).MatchString(ContentSecurityPolicy) {
		t.Error("CSP allows inline or eval'd script")
	}
}

// TestNoDangerousSinks reads every embedded file and proves the UI never
// parses strings as markup or code in the page: mail data can only reach the
// DOM as text. The one HTML sink is the sandboxed iframe's srcdoc.
func TestNoDangerousSinks(t *testing.T) {
	t.Parallel()
	banned := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b|setHTMLUnsafe|parseHTMLUnsafe|createContextualFragment|\.html\s*\(|javascript:|setTimeout\(\s*['"\x60]|setInterval\(\s*['"\x60]`)
	inlineHandler := regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	inlineScript := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`)
	srcdoc := regexp.MustCompile(`\.srcdoc\s*=`)
	srcdocUses := 0
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(staticFS, p)
		if err != nil {
			return err
		}
		s := string(b)
		for i, line := range strings.Split(s, "\n") {
			if m := banned.FindString(line); m != "" {
				t.Errorf("%s:%d uses %q: %s", p, i+1, m, strings.TrimSpace(line))
			}
			if srcdoc.MatchString(line) {
				srcdocUses++
				if p != "static/js/message.js" {
					t.Errorf("%s:%d sets srcdoc outside the sandboxed message frame", p, i+1)
				}
			}
		}
		if strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".svg") {
			if m := inlineHandler.FindString(s); m != "" {
				t.Errorf("%s has an inline event handler: %s", p, m)
			}
			if m := inlineScript.FindString(s); m != "" {
				t.Errorf("%s has an inline script: %s", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if srcdocUses != 1 {
		t.Errorf("srcdoc assigned %d times, want exactly 1", srcdocUses)
	}
	// The frame must stay sandboxed without scripts and same-origin access.
	b, err := fs.ReadFile(staticFS, "static/js/message.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`sandbox:\s*'([^']*)'`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("message.js: no sandbox attribute on the frame")
	}
	if strings.Contains(m[1], "allow-scripts") || strings.Contains(m[1], "allow-same-origin") {
		t.Errorf("frame sandbox %q allows scripts or same-origin", m[1])
	}
}
