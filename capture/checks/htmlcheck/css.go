package htmlcheck

import (
	"strings"
)

// propSlugs maps a CSS property to the features it uses beyond "css-" +
// its own name (which is looked up as is).
var propSlugs = map[string][]string{
	"column-gap": {"css-gap", "css-column-layout-properties"}, "row-gap": {"css-gap"},
	"grid-template-areas": {"css-grid-template"}, "grid-template-columns": {"css-grid-template"},
	"grid-template-rows": {"css-grid-template"},
	"left":               {"css-left-right-top-bottom"}, "right": {"css-left-right-top-bottom"},
	"top": {"css-left-right-top-bottom"}, "bottom": {"css-left-right-top-bottom"},
	"inset-block": {"css-inset"}, "inset-inline": {"css-inset"}, "inset-inline-start": {"css-inset"},
	"inset-inline-end": {"css-inset"}, "inset-block-start": {"css-inset"}, "inset-block-end": {"css-inset"},
	"column-fill": {"css-column-layout-properties"}, "column-rule": {"css-column-layout-properties"},
	"column-rule-color": {"css-column-layout-properties"}, "column-rule-style": {"css-column-layout-properties"},
	"column-rule-width": {"css-column-layout-properties"}, "column-span": {"css-column-layout-properties"},
	"column-width": {"css-column-layout-properties"}, "columns": {"css-column-layout-properties"},
	"column-count": {"css-column-layout-properties"},
	"block-size":   {"css-block-inline-size"}, "inline-size": {"css-block-inline-size"},
	"border-inline": {"css-border-inline-block"}, "border-block": {"css-border-inline-block"},
	"margin-inline": {"css-margin-inline-block"}, "margin-block": {"css-margin-inline-block"},
	"padding-inline": {"css-padding-inline-block"}, "padding-block": {"css-padding-inline-block"},
	"margin-block-start": {"css-margin-block-start-end"}, "margin-block-end": {"css-margin-block-start-end"},
	"margin-inline-start": {"css-margin-inline-start-end"}, "margin-inline-end": {"css-margin-inline-start-end"},
	"padding-block-start": {"css-padding-block-start-end"}, "padding-block-end": {"css-padding-block-start-end"},
	"padding-inline-start": {"css-padding-inline-start-end"}, "padding-inline-end": {"css-padding-inline-start-end"},
	"border-start-start-radius": {"css-border-radius-logical"}, "border-start-end-radius": {"css-border-radius-logical"},
	"border-end-start-radius": {"css-border-radius-logical"}, "border-end-end-radius": {"css-border-radius-logical"},
	"overflow-x": {"css-overflow"}, "overflow-y": {"css-overflow"}, "overflow-block": {"css-overflow"},
	"overflow-inline": {"css-overflow"}, "-webkit-mask-image": {"css-mask-image"},
	"text-emphasis-color": {"css-text-emphasis"}, "text-emphasis-style": {"css-text-emphasis"},
	"word-wrap": {"css-word-wrap"},
}

// propPrefixSlugs: every property starting with the key uses the feature.
var propPrefixSlugs = [][2]string{
	{"border-top", "css-border"}, {"border-bottom", "css-border"}, {"border-left", "css-border"},
	{"border-right", "css-border"}, {"border-width", "css-border"}, {"border-style", "css-border"},
	{"border-color", "css-border"}, {"margin-top", "css-margin"}, {"margin-bottom", "css-margin"},
	{"margin-left", "css-margin"}, {"margin-right", "css-margin"}, {"padding-top", "css-padding"},
	{"padding-bottom", "css-padding"}, {"padding-left", "css-padding"}, {"padding-right", "css-padding"},
	{"animation", "css-animation"}, {"transition", "css-transition"}, {"scroll-snap", "css-scroll-snap"},
	{"border-inline-", "css-border-inline-block-individual"}, {"border-block-", "css-border-inline-block-individual"},
}

// longhandBorder: border-(inline|block)-(start|end)-(color|style|width).
func longhandBorder(p string) bool {
	for _, a := range []string{"border-inline-", "border-block-"} {
		if rest, ok := strings.CutPrefix(p, a); ok {
			for _, b := range []string{"start-", "end-"} {
				if r, ok := strings.CutPrefix(rest, b); ok && (r == "color" || r == "style" || r == "width") {
					return true
				}
			}
		}
	}
	return false
}

// valueFuncs maps a function used in a value to its feature.
var valueFuncs = map[string]string{
	"rgb": "css-rgb", "rgba": "css-rgba", "linear-gradient": "css-linear-gradient",
	"repeating-linear-gradient": "css-linear-gradient", "radial-gradient": "css-radial-gradient",
	"repeating-radial-gradient": "css-radial-gradient", "conic-gradient": "css-conic-gradient",
	"repeating-conic-gradient": "css-conic-gradient", "calc": "css-unit-calc", "clamp": "css-function-clamp",
	"min": "css-function-min", "max": "css-function-max", "light-dark": "css-function-light-dark",
	"lch": "css-modern-color", "oklch": "css-modern-color", "lab": "css-modern-color", "oklab": "css-modern-color",
	"var": "css-variables",
}

// units maps a length unit to its feature.
var units = map[string]string{
	"px": "css-unit-px", "em": "css-unit-em", "rem": "css-unit-rem", "ex": "css-unit-ex", "ch": "css-unit-ch",
	"cm": "css-unit-cm", "mm": "css-unit-mm", "in": "css-unit-in", "pt": "css-unit-pt", "pc": "css-unit-pc",
	"vh": "css-unit-vh", "vw": "css-unit-vw", "vmin": "css-unit-vmin", "vmax": "css-unit-vmax", "%": "css-unit-percent",
}

// pseudoElements are the pseudos that are elements even with one colon.
var pseudoElements = map[string]bool{"before": true, "after": true, "first-letter": true, "first-line": true, "marker": true, "placeholder": true}

// context kinds of the CSS scanner's stack.
const (
	ctxRules     = iota // a list of rules (top level, @media, @supports)
	ctxDecls            // a declaration block (may nest rules: CSS nesting)
	ctxKeyframes        // @keyframes: steps whose "selectors" are not selectors
	ctxSkip             // an at-rule block not analysed
)

// css scans CSS: a whole sheet, or a style attribute's declarations when
// inline is set. It is one linear pass; comments and strings are skipped
// and the nesting stack is bounded.
func (c *counter) css(s string, inline bool) {
	if c.cssBytes+len(s) > maxCSSBytes {
		s = s[:max(0, maxCSSBytes-c.cssBytes)]
		c.trunc = true
	}
	c.cssBytes += len(s)
	stack := make([]int, 1, 8)
	stack[0] = ctxRules
	if inline {
		stack[0] = ctxDecls
	}
	deep := 0 // blocks opened beyond maxCSSDepth
	top := func() int { return stack[len(stack)-1] }
	var buf strings.Builder // the current prelude or declaration
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch ch {
		case '/':
			if i+1 < len(s) && s[i+1] == '*' {
				c.add("css-comments")
				end := strings.Index(s[i+2:], "*/")
				if end < 0 {
					i = len(s)
				} else {
					i += 2 + end + 1
				}
				buf.WriteByte(' ')
				continue
			}
		case '"', '\'':
			j := i + 1
			for j < len(s) && s[j] != ch {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				j = len(s) - 1
			}
			if buf.Len() < 4096 {
				buf.WriteString(s[i : j+1])
			}
			i = j
			continue
		case '{':
			text := strings.TrimSpace(buf.String())
			buf.Reset()
			if deep > 0 || len(stack) >= maxCSSDepth {
				deep++
				continue
			}
			stack = append(stack, c.open(top(), text))
			continue
		case '}':
			text := strings.TrimSpace(buf.String())
			buf.Reset()
			if deep > 0 {
				deep--
				continue
			}
			if top() == ctxDecls && text != "" {
				c.declaration(text)
			}
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		case ';':
			text := strings.TrimSpace(buf.String())
			buf.Reset()
			if deep > 0 {
				continue
			}
			switch top() {
			case ctxDecls:
				if text != "" {
					c.declaration(text)
				}
			case ctxRules:
				if strings.HasPrefix(text, "@") {
					c.atRule(text) // @import …;
				}
			}
			continue
		}
		// Preludes and declarations longer than this are hostile; their
		// start says enough.
		if buf.Len() < 4096 {
			buf.WriteByte(ch)
		}
	}
	if text := strings.TrimSpace(buf.String()); text != "" && deep == 0 && top() == ctxDecls {
		c.declaration(text)
	}
}

// open handles a block's prelude and returns the new context.
func (c *counter) open(cur int, prelude string) int {
	switch cur {
	case ctxSkip:
		return ctxSkip
	case ctxKeyframes:
		return ctxDecls
	}
	if strings.HasPrefix(prelude, "@") {
		switch name := c.atRule(prelude); name {
		case "media", "supports", "document", "layer", "container":
			return ctxRules
		case "font-face", "page":
			return ctxDecls
		case "keyframes", "-webkit-keyframes":
			return ctxKeyframes
		}
		return ctxSkip
	}
	if cur == ctxDecls {
		c.add("css-nesting")
	}
	c.selectors(prelude)
	return ctxDecls
}

// atRule counts an at-rule and returns its name.
func (c *counter) atRule(prelude string) string {
	name := strings.ToLower(prelude[1:])
	rest := ""
	if i := strings.IndexAny(name, " \t\r\n(\"'"); i >= 0 {
		name, rest = name[:i], name[i:]
	}
	switch name {
	case "font-face", "import", "keyframes", "media", "supports":
		c.add("css-at-" + name)
	case "-webkit-keyframes":
		c.add("css-at-keyframes")
	}
	if name == "media" {
		switch {
		case strings.Contains(rest, "prefers-color-scheme"):
			c.add("css-at-media-prefers-color-scheme")
		}
		if strings.Contains(rest, "prefers-reduced-motion") {
			c.add("css-at-media-prefers-reduced-motion")
		}
		if strings.Contains(rest, "orientation") {
			c.add("css-at-media-orientation")
		}
		if strings.Contains(rest, "hover") {
			c.add("css-at-media-hover")
		}
		if strings.Contains(rest, "device-pixel-ratio") {
			c.add("css-at-media-device-pixel-ratio")
		}
	}
	return name
}

// selectors counts the selector features of a rule's prelude.
func (c *counter) selectors(prelude string) {
	depth := 0
	groups := 1
	for i := 0; i < len(prelude); i++ {
		switch prelude[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				groups++
			}
		}
	}
	if groups > 1 {
		c.add("css-selector-grouping")
	}
	simple := 0 // simple selectors in the current compound
	endCompound := func() {
		if simple > 1 {
			c.add("css-selector-chaining")
		}
		simple = 0
	}
	pendingSpace := false
	for i := 0; i < len(prelude); i++ {
		ch := prelude[i]
		switch {
		case ch == ',':
			endCompound()
			pendingSpace = false
			continue
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if simple > 0 {
				pendingSpace = true
			}
			continue
		case ch == '>' || ch == '+' || ch == '~':
			endCompound()
			pendingSpace = false
			c.add(map[byte]string{'>': "css-selector-child", '+': "css-selector-adjacent-sibling", '~': "css-selector-general-sibling"}[ch])
			continue
		}
		if pendingSpace {
			endCompound()
			c.add("css-selector-descendant")
			pendingSpace = false
		}
		switch {
		case ch == '.':
			c.add("css-selector-class")
			simple++
			i = skipIdent(prelude, i+1) - 1
		case ch == '#':
			c.add("css-selector-id")
			simple++
			i = skipIdent(prelude, i+1) - 1
		case ch == '*':
			c.add("css-selector-universal")
			simple++
		case ch == '[':
			c.add("css-selector-attribute")
			simple++
			if j := strings.IndexByte(prelude[i:], ']'); j >= 0 {
				i += j
			} else {
				i = len(prelude)
			}
		case ch == ':':
			elem := i+1 < len(prelude) && prelude[i+1] == ':'
			if elem {
				i++
			}
			j := skipIdent(prelude, i+1)
			name := strings.ToLower(prelude[i+1 : j])
			if elem || pseudoElements[name] {
				c.add("css-pseudo-element-" + name)
			} else {
				c.add("css-pseudo-class-" + name)
			}
			simple++
			i = j - 1
			if j < len(prelude) && prelude[j] == '(' {
				// :not(…), :nth-child(…): the argument is skipped, its
				// selectors (for :not, :has) are not analysed further.
				d := 0
				for k := j; k < len(prelude); k++ {
					if prelude[k] == '(' {
						d++
					} else if prelude[k] == ')' {
						if d--; d == 0 {
							i = k
							break
						}
					}
				}
			}
		case ch == '&':
			simple++
		case isIdentByte(ch):
			c.add("css-selector-type")
			simple++
			i = skipIdent(prelude, i) - 1
		}
	}
	endCompound()
}

func isIdentByte(b byte) bool {
	return b == '-' || b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80 || b == '\\'
}

func skipIdent(s string, i int) int {
	for i < len(s) && isIdentByte(s[i]) {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i, len(s))
}

// declaration counts a "property: value" declaration.
func (c *counter) declaration(d string) {
	prop, val, ok := strings.Cut(d, ":")
	if !ok {
		return
	}
	prop = strings.ToLower(strings.TrimSpace(prop))
	val = strings.TrimSpace(val)
	if prop == "" {
		return
	}
	if strings.HasPrefix(prop, "--") {
		c.add("css-variables")
		return
	}
	c.add("css-" + prop)
	for _, s := range propSlugs[prop] {
		c.add(s)
	}
	for _, ps := range propPrefixSlugs {
		if strings.HasPrefix(prop, ps[0]) && prop != ps[0] {
			c.add(ps[1])
		}
	}
	if longhandBorder(prop) {
		c.add("css-border-inline-block-longhand")
	}
	lv := strings.ToLower(val)
	if i := strings.Index(lv, "!important"); i >= 0 {
		c.add("css-important")
		lv = strings.TrimSpace(lv[:i])
	}
	switch prop {
	case "display":
		switch lv {
		case "flex", "inline-flex":
			c.add("css-display-flex")
		case "grid", "inline-grid":
			c.add("css-display-grid")
		case "none":
			c.add("css-display-none")
		}
	case "font-family", "font":
		for _, f := range []string{"system-ui", "ui-serif", "ui-sans-serif", "ui-rounded", "ui-monospace"} {
			if strings.Contains(lv, f) {
				c.add("css-sytem-ui")
				break
			}
		}
	}
	c.value(lv)
}

// value counts the functions, units and keywords of a declaration value.
func (c *counter) value(v string) {
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case ch == '"' || ch == '\'':
			if j := strings.IndexByte(v[i+1:], ch); j >= 0 {
				i += j + 1
			} else {
				return
			}
		case ch == '#':
			i = skipIdent(v, i+1) - 1 // a colour
		case ch >= '0' && ch <= '9' || ch == '.' && i+1 < len(v) && v[i+1] >= '0' && v[i+1] <= '9':
			j := i
			for j < len(v) && (v[j] >= '0' && v[j] <= '9' || v[j] == '.') {
				j++
			}
			k := j
			if k < len(v) && v[k] == '%' {
				k++
			} else {
				for k < len(v) && v[k] >= 'a' && v[k] <= 'z' {
					k++
				}
			}
			if s, ok := units[v[j:k]]; ok {
				c.add(s)
			}
			i = k - 1
		case isIdentByte(ch):
			j := skipIdent(v, i)
			word := v[i:j]
			if j < len(v) && v[j] == '(' {
				if word == "url" {
					// Skip the URL: it is not CSS.
					if k := strings.IndexByte(v[j:], ')'); k >= 0 {
						j += k + 1
					} else {
						return
					}
				} else if s, ok := valueFuncs[word]; ok {
					c.add(s)
				}
			} else {
				switch word {
				case "initial":
					c.add("css-unit-initial")
				case "fit-content", "min-content", "max-content":
					c.add("css-intrinsic-size")
				}
			}
			i = j - 1
		}
	}
}
