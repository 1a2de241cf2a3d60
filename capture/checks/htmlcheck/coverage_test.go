package htmlcheck

import (
	"strings"
	"testing"
)

// special holds the snippets of features no generic rule below derives.
var special = map[string]string{
	"amp":                                 `<html ⚡4email><body></body></html>`,
	"css-at-font-face":                    `<style>@font-face{font-family:x}</style>`,
	"css-at-import":                       `<style>@import url(a.css);</style>`,
	"css-at-keyframes":                    `<style>@keyframes k{from{opacity:0}}</style>`,
	"css-at-media":                        `<style>@media screen{a{color:red}}</style>`,
	"css-at-media-device-pixel-ratio":     `<style>@media (-webkit-min-device-pixel-ratio:2){a{color:red}}</style>`,
	"css-at-media-hover":                  `<style>@media (hover:hover){a{color:red}}</style>`,
	"css-at-media-orientation":            `<style>@media (orientation:landscape){a{color:red}}</style>`,
	"css-at-media-prefers-color-scheme":   `<style>@media (prefers-color-scheme:dark){a{color:red}}</style>`,
	"css-at-media-prefers-reduced-motion": `<style>@media (prefers-reduced-motion){a{color:red}}</style>`,
	"css-at-supports":                     `<style>@supports (display:grid){a{color:red}}</style>`,
	"css-comments":                        `<style>/* c */</style>`,
	"css-display-flex":                    `<p style="display:flex">`,
	"css-display-grid":                    `<p style="display:grid">`,
	"css-display-none":                    `<p style="display:none">`,
	"css-important":                       `<p style="color:red !important">`,
	"css-intrinsic-size":                  `<p style="width:fit-content">`,
	"css-nesting":                         `<style>.a{color:red; &:hover{color:blue}}</style>`,
	"css-sytem-ui":                        `<p style="font-family:system-ui">`,
	"css-unit-initial":                    `<p style="width:initial">`,
	"css-variables":                       `<p style="--x:1px">`,
	"css-modern-color":                    `<p style="color:oklch(50% 0.1 120)">`,
	"css-selector-adjacent-sibling":       `<style>a+b{color:red}</style>`,
	"css-selector-attribute":              `<style>[x]{color:red}</style>`,
	"css-selector-chaining":               `<style>a.b{color:red}</style>`,
	"css-selector-child":                  `<style>a>b{color:red}</style>`,
	"css-selector-class":                  `<style>.a{color:red}</style>`,
	"css-selector-descendant":             `<style>a b{color:red}</style>`,
	"css-selector-general-sibling":        `<style>a~b{color:red}</style>`,
	"css-selector-grouping":               `<style>a,b{color:red}</style>`,
	"css-selector-id":                     `<style>#a{color:red}</style>`,
	"css-selector-type":                   `<style>a{color:red}</style>`,
	"css-selector-universal":              `<style>*{color:red}</style>`,
	"html-anchor-links":                   `<a href="#top">`,
	"html-mailto-links":                   `<a href="mailto:a@example.com">`,
	"html-button-reset":                   `<button type="reset">`,
	"html-button-submit":                  `<button type="submit">`,
	"html-comments":                       `<!-- c -->`,
	"html-doctype":                        `<!DOCTYPE html>`,
	"html-meta-color-scheme":              `<meta name="color-scheme" content="light dark">`,
	"image-base64":                        `<img src="data:image/png;base64,AAAA">`,
}

// snippet is an HTML sample using the feature slug.
func snippet(slug string) string {
	if s, ok := special[slug]; ok {
		return s
	}
	for tag, s := range elementSlugs {
		if s == slug {
			return "<" + tag + ">"
		}
	}
	for a, ss := range attrSlugs {
		for _, s := range ss {
			if s == slug {
				return `<p ` + a + `="1">`
			}
		}
	}
	for ext, s := range imageSlugs {
		if s == slug && !strings.ContainsAny(ext, "+-.") {
			return `<img src="a.` + ext + `">`
		}
	}
	for p, ss := range propSlugs {
		for _, s := range ss {
			if s == slug {
				return `<p style="` + p + `:1px">`
			}
		}
	}
	if strings.HasPrefix(slug, "css-border-inline-block-longhand") {
		return `<p style="border-inline-start-color:red">`
	}
	for fn, s := range valueFuncs {
		if s == slug {
			return `<p style="width:` + fn + `(1px)">`
		}
	}
	for u, s := range units {
		if s == slug {
			return `<p style="width:1` + u + `">`
		}
	}
	if n, ok := strings.CutPrefix(slug, "css-pseudo-class-"); ok {
		return `<style>a:` + n + `{color:red}</style>`
	}
	if n, ok := strings.CutPrefix(slug, "css-pseudo-element-"); ok {
		return `<style>a::` + n + `{color:red}</style>`
	}
	if n, ok := strings.CutPrefix(slug, "css-"); ok {
		return `<p style="` + n + `:1px">`
	}
	if n, ok := strings.CutPrefix(slug, "html-input-"); ok {
		return `<input type="` + n + `">`
	}
	if n, ok := strings.CutPrefix(slug, "html-"); ok {
		return "<" + n + ">"
	}
	return ""
}

// TestEveryFeatureDetectable: every feature in the caniemail table but
// those listed as undetectable is found in a sample that uses it, so no
// part of the table is silently ignored.
func TestEveryFeatureDetectable(t *testing.T) {
	for _, f := range newChecker(t).Features() {
		if !detectable(f.Slug) {
			continue
		}
		s := snippet(f.Slug)
		counts, _, _ := walk(s)
		if counts[f.Slug] == 0 {
			t.Errorf("%s (%q) not detected in %s", f.Slug, f.Title, s)
		}
	}
}
