package rest

import (
	"net/http"
	"strings"
)

// NormalizeWebroot returns p as a path prefix with a leading and a trailing
// slash ("mail" → "/mail/"); "" and "/" give "/".
func NormalizeWebroot(p string) string {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return "/"
	}
	return "/" + p + "/"
}

// underWebroot serves h below prefix: the prefix is cut from the path
// before h sees it, the prefix without its final slash redirects to it
// (the UI's relative links need the slash), and anything else is a 404.
func underWebroot(prefix string, h http.Handler) http.Handler {
	prefix = NormalizeWebroot(prefix)
	if prefix == "/" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == strings.TrimSuffix(prefix, "/") {
			target := prefix
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			writeJSONError(w, http.StatusNotFound, "not found (everything is served under "+prefix+")")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		if r.URL.RawPath != "" {
			if raw, ok := strings.CutPrefix(r.URL.RawPath, prefix); ok {
				r2.URL.RawPath = "/" + raw
			} else {
				r2.URL.RawPath = ""
			}
		}
		h.ServeHTTP(w, r2)
	})
}
