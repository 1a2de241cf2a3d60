// Package ui serves the mailsandbox web UI: plain HTML, CSS and JavaScript
// modules embedded in the binary with go:embed. There is no build step and no
// third-party front-end code.
//
// The UI is a static single-page application. It talks to the server only
// through the REST API under /api/v1 and the Server-Sent Events stream at
// /api/v1/events; routes live in the URL fragment (#/mailbox/bob@example.com/
// message/ID), so the handler only serves a handful of fixed files.
//
// What it offers: mailboxes with unread counts, "All mail" and the relay
// queue on the left; fifty messages a page, newest first, in the middle; the
// message on the right with HTML (sandboxed, remote images blocked until
// allowed per message, cid: images shown), text, headers, raw source and
// attachments, and a Checks tab (HTML support per mail client, links, spam
// score, DKIM/SPF/DMARC, bulk-sender rules); reply, forward, compose, mark read/unread, delete, release,
// and a .eml download. New mail appears live. The search box takes words
// (matched against subject and text) and from:, to:, subject:, mailbox:,
// since: and before: prefixes. Keyboard: j/k next/previous, / search,
// c compose, r reply, f forward, u toggle unread, Delete delete, Escape back,
// ? the list of shortcuts.
//
// Captured mail is hostile input. The UI never turns mail data into markup in
// the page: it builds DOM nodes with textContent, and renders HTML bodies only
// inside an iframe sandboxed without scripts and without same-origin access.
// Every response carries a strict Content-Security-Policy as a second line of
// defence.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every UI response.
//
// Scripts, styles sheets, fonts and XHR/SSE come only from this origin;
// no plugins, no <base>, no framing of the UI by other sites, forms post only
// here. Two sources are wider than 'self' on purpose, both for the sandboxed
// message iframe, which inherits this policy because it is an about:srcdoc
// document: style-src allows inline styles (mail HTML is styled inline; the
// UI itself puts no mail data into style), and img-src allows http(s) images
// (the iframe adds its own, tighter policy that blocks remote images until
// the user asks for them per message).
const ContentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob: http: https:; " +
	"font-src 'self' data:; " +
	"connect-src 'self'; " +
	"frame-src 'self'; " +
	"manifest-src 'self'; " +
	"media-src 'none'; " +
	"object-src 'none'; " +
	"base-uri 'none'; " +
	"form-action 'self'; " +
	"frame-ancestors 'none'"

// Options configures the UI handler. The zero value is ready to use and is
// what the server passes today; fields may be added later, each documenting
// what its zero value means.
type Options struct{}

// asset is one embedded file, prepared once.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded files.
type handler struct {
	assets  map[string]asset // by URL path, e.g. "/js/app.js"
	modTime time.Time
}

// Handler returns the http.Handler that serves the UI. Mount it at "/" for
// every path the REST server does not own (everything except /api/,
// /healthz and /metrics). It answers GET and HEAD for "/", "/index.html" and
// the embedded assets, 404 for any other path and 405 for other methods.
func Handler(opts Options) http.Handler {
	_ = opts
	h := &handler{assets: map[string]asset{}}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("ui: embedded static dir missing: " + err.Error()) // cannot happen: embed guarantees it
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.assets["/"+p] = asset{
			body:        body,
			contentType: contentType(p),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic("ui: read embedded files: " + err.Error()) // cannot happen: embedded files are readable
	}
	h.assets["/"] = h.assets["/index.html"]
	return h
}

// contentType maps the extensions we embed to their media types. Explicit,
// so the answer does not depend on the host's mime tables.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".webmanifest":
		return "application/manifest+json"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	default:
		return "application/octet-stream"
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := h.assets[r.URL.Path]
	if !ok || strings.Contains(r.URL.Path, "..") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	// Revalidate every time: a new binary must never run stale modules, and
	// the ETag makes the check cheap.
	hdr.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", h.modTime, bytes.NewReader(a.body))
}
