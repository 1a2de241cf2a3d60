package htmlcheck

import (
	"path"
	"strings"

	"golang.org/x/net/html"
)

// Limits on what one check reads, so hostile input costs bounded work.
const (
	// MaxHTMLBytes is the most HTML read; the rest is ignored (Truncated).
	MaxHTMLBytes = 16 << 20
	// maxCSSBytes caps the CSS read over all <style> blocks and style
	// attributes together.
	maxCSSBytes = 8 << 20
	// maxCSSDepth caps the tracked nesting of CSS blocks; deeper blocks
	// are still balanced, just not analysed.
	maxCSSDepth = 64
)

// elementSlugs maps an element to the features its presence uses.
var elementSlugs = map[string]string{
	"abbr": "html-abbr", "acronym": "html-acronym", "address": "html-address", "audio": "html-audio",
	"base": "html-base", "bdi": "html-bdi", "blockquote": "html-blockquote", "body": "html-body",
	"code": "html-code", "del": "html-del", "dfn": "html-dfn", "dialog": "html-dialog", "div": "html-div",
	"form": "html-form", "h1": "html-h1-h6", "h2": "html-h1-h6", "h3": "html-h1-h6", "h4": "html-h1-h6",
	"h5": "html-h1-h6", "h6": "html-h1-h6", "hr": "html-hr", "img": "html-img", "link": "html-link",
	"ul": "html-lists", "ol": "html-lists", "dl": "html-lists", "marquee": "html-marquee", "meter": "html-meter",
	"object": "html-object", "embed": "html-object", "p": "html-p", "picture": "html-picture", "pre": "html-pre",
	"progress": "html-progress", "rp": "html-rp", "rt": "html-rt", "ruby": "html-ruby", "select": "html-select",
	"small": "html-small", "span": "html-span", "strike": "html-strike", "strong": "html-strong",
	"style": "html-style", "svg": "html-svg", "table": "html-table", "textarea": "html-textarea",
	"video": "html-video", "wbr": "html-wbr", "map": "html-image-maps",
	"article": "html-semantics", "aside": "html-semantics", "details": "html-semantics", "figcaption": "html-semantics",
	"figure": "html-semantics", "footer": "html-semantics", "header": "html-semantics", "main": "html-semantics",
	"mark": "html-semantics", "nav": "html-semantics", "section": "html-semantics", "summary": "html-semantics",
	"time": "html-semantics",
}

// attrSlugs maps an attribute (on any element) to the features it uses.
// Presentational attributes also count as the CSS property they stand for,
// as clients treat them alike (and Mailpit counts them so).
var attrSlugs = map[string][]string{
	"align": {"html-align"}, "aria-describedby": {"html-aria-describedby"}, "aria-hidden": {"html-aria-hidden"},
	"aria-label": {"html-aria-label"}, "aria-labelledby": {"html-aria-labelledby"}, "aria-live": {"html-aria-live"},
	"background": {"html-background", "css-background"}, "cellpadding": {"html-cellpadding"},
	"cellspacing": {"html-cellspacing"}, "dir": {"html-dir"}, "height": {"html-height", "css-height"},
	"width": {"html-width", "css-width"}, "hidden": {"html-hidden"}, "lang": {"html-lang"},
	"loading": {"html-loading-attribute"}, "popover": {"html-popover"}, "required": {"html-required"},
	"role": {"html-role"}, "srcset": {"html-srcset"}, "sizes": {"html-srcset"}, "target": {"html-target"},
	"valign": {"html-valign"}, "usemap": {"html-image-maps"}, "inert": {"css-inert-attribute"},
	"bgcolor": {"css-background-color"}, "border": {"css-border"}, "padding": {"css-padding"},
}

// imageSlugs maps an image file extension or data: subtype to its format.
var imageSlugs = map[string]string{
	"apng": "image-apng", "avif": "image-avif", "bmp": "image-bmp", "gif": "image-gif", "hdr": "image-hdr",
	"heif": "image-heif", "heic": "image-heif", "ico": "image-ico", "jpg": "image-jpg", "jpeg": "image-jpg",
	"mp4": "image-mp4", "png": "image-png", "svg": "image-svg", "svg+xml": "image-svg", "tif": "image-tiff",
	"tiff": "image-tiff", "webp": "image-webp", "x-icon": "image-ico", "vnd.microsoft.icon": "image-ico",
}

// undetectable lists features that the HTML alone cannot show (BIMI is a
// DNS record and a header).
var undetectable = map[string]bool{"bimi": true}

func detectable(slug string) bool { return !undetectable[slug] }

// counter collects feature occurrences.
type counter struct {
	n        map[string]int
	cssBytes int
	trunc    bool
}

func (c *counter) add(slug string) { c.n[slug]++ }

// walk reads the HTML once and counts the features it uses.
func walk(doc string) (counts map[string]int, nodes int, truncated bool) {
	c := &counter{n: map[string]int{}}
	if len(doc) > MaxHTMLBytes {
		doc, c.trunc = doc[:MaxHTMLBytes], true
	}
	z := html.NewTokenizer(strings.NewReader(doc))
	inStyle := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return c.n, nodes, c.trunc
		case html.DoctypeToken:
			if strings.EqualFold(strings.TrimSpace(string(z.Text())), "html") {
				c.add("html-doctype")
			}
		case html.CommentToken:
			c.add("html-comments")
		case html.TextToken:
			if inStyle {
				c.css(string(z.Text()), false)
			}
		case html.EndTagToken:
			inStyle = false
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			var attrs [][2]string
			for hasAttr {
				k, v, more := z.TagAttr()
				attrs = append(attrs, [2]string{string(k), string(v)})
				hasAttr = more
			}
			switch tag {
			case "html", "head", "meta":
			default:
				nodes++
			}
			c.element(tag, attrs)
			inStyle = tag == "style" && tt == html.StartTagToken
		}
	}
}

func attr(attrs [][2]string, key string) (string, bool) {
	for _, a := range attrs {
		if a[0] == key {
			return a[1], true
		}
	}
	return "", false
}

func (c *counter) element(tag string, attrs [][2]string) {
	if s, ok := elementSlugs[tag]; ok {
		c.add(s)
	}
	typ, _ := attr(attrs, "type")
	typ = strings.ToLower(strings.TrimSpace(typ))
	switch tag {
	case "html":
		for _, a := range attrs {
			if a[0] == "⚡4email" || a[0] == "amp4email" {
				c.add("amp")
			}
		}
	case "input":
		switch typ {
		case "", "text":
			c.add("html-input-text")
		case "checkbox", "hidden", "radio", "reset", "submit":
			c.add("html-input-" + typ)
		}
	case "button":
		switch typ {
		case "", "submit":
			c.add("html-button-submit")
		case "reset":
			c.add("html-button-reset")
		}
	case "meta":
		if n, _ := attr(attrs, "name"); strings.EqualFold(n, "color-scheme") || strings.EqualFold(n, "supported-color-schemes") {
			c.add("html-meta-color-scheme")
		}
	case "a":
		href, _ := attr(attrs, "href")
		href = strings.TrimSpace(href)
		switch {
		case strings.HasPrefix(href, "#"):
			c.add("html-anchor-links")
		case len(href) >= 7 && strings.EqualFold(href[:7], "mailto:"):
			c.add("html-mailto-links")
		}
	case "img":
		if src, ok := attr(attrs, "src"); ok {
			c.image(src)
		}
	}
	for _, a := range attrs {
		for _, s := range attrSlugs[a[0]] {
			c.add(s)
		}
		if a[0] == "style" {
			c.css(a[1], true)
		}
	}
}

// image counts an img src's format, from a data: URL's type or the path's
// extension.
func (c *counter) image(src string) {
	src = strings.TrimSpace(src)
	if len(src) > 11 && strings.EqualFold(src[:11], "data:image/") {
		c.add("image-base64")
		sub, _, _ := strings.Cut(src[11:], ";")
		sub, _, _ = strings.Cut(sub, ",")
		if s, ok := imageSlugs[strings.ToLower(sub)]; ok {
			c.add(s)
		}
		return
	}
	p := src
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(p), "."))
	if s, ok := imageSlugs[ext]; ok && !strings.Contains(ext, "+") && !strings.Contains(ext, "-") {
		c.add(s)
	}
}
