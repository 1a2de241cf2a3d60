package linkcheck

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// Ref is a URL found in a message and what points at it.
type Ref struct {
	URL  string `json:"url"`
	Kind string `json:"kind"` // link, image or stylesheet
}

// maxExtractBytes bounds the HTML and text read for URLs.
const maxExtractBytes = 16 << 20

// textURL finds http(s) URLs in plain text.
var textURL = regexp.MustCompile(`https?://[^\s<>"'()\[\]{}]+`)

// cssURL finds url(…) in CSS.
var cssURL = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")\s]+)['"]?\s*\)`)

// cssImport finds @import's target, as url(…) or a string.
var cssImport = regexp.MustCompile(`(?i)@import\s+(?:url\(\s*)?['"]?([^'")\s;]+)`)

// Extract lists the http(s) URLs of an HTML body (links, images,
// stylesheets, CSS url()) and of a text body, each once, in order.
func Extract(htmlBody, text string) []Ref {
	var out []Ref
	seen := map[string]bool{}
	add := func(u, kind string) {
		u = strings.TrimSpace(u)
		l := strings.ToLower(u)
		if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") || seen[u] {
			return
		}
		seen[u] = true
		out = append(out, Ref{URL: u, Kind: kind})
	}
	if len(htmlBody) > maxExtractBytes {
		htmlBody = htmlBody[:maxExtractBytes]
	}
	if len(text) > maxExtractBytes {
		text = text[:maxExtractBytes]
	}
	css := func(s string) {
		for _, m := range cssImport.FindAllStringSubmatch(s, -1) {
			add(m[1], "stylesheet")
		}
		for _, m := range cssURL.FindAllStringSubmatch(s, -1) {
			add(m[1], "image")
		}
	}
	z := html.NewTokenizer(strings.NewReader(htmlBody))
	inStyle := false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		switch tt {
		case html.TextToken:
			if inStyle {
				css(string(z.Text()))
			}
		case html.EndTagToken:
			inStyle = false
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			tag := string(name)
			inStyle = tag == "style" && tt == html.StartTagToken
			attrs := map[string]string{}
			for more {
				k, v, m := z.TagAttr()
				attrs[string(k)] = string(v)
				more = m
			}
			switch tag {
			case "a", "area":
				add(attrs["href"], "link")
			case "img", "source", "video", "audio", "input":
				add(attrs["src"], "image")
				for _, c := range strings.Split(attrs["srcset"], ",") {
					if f := strings.Fields(c); len(f) > 0 {
						add(f[0], "image")
					}
				}
				add(attrs["poster"], "image")
			case "link":
				rel := strings.ToLower(attrs["rel"])
				if strings.Contains(rel, "stylesheet") {
					add(attrs["href"], "stylesheet")
				} else if strings.Contains(rel, "icon") {
					add(attrs["href"], "image")
				}
			}
			if b, ok := attrs["background"]; ok {
				add(b, "image")
			}
			if s, ok := attrs["style"]; ok {
				css(s)
			}
		}
	}
	for _, u := range textURL.FindAllString(text, -1) {
		add(strings.TrimRight(u, ".,;:!?*_"), "link")
	}
	return out
}
