// Command gencaniemail converts the caniemail.com support tables (their
// _features/*.md front matter and _data/nicenames.yml) into the compact
// JSON that package htmlcheck embeds, and copies the licence beside it.
// It runs at build time through go generate, never at run time.
//
// The front matter is close to YAML but not strict (trailing commas in
// {…} blocks, tabs and spaces mixed), so it is read with a small tolerant
// parser rather than a YAML library.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Data is the generated file's shape (mirrored by htmlcheck's loader).
type Data struct {
	Source    string            `json:"source"`
	License   string            `json:"license"`
	Families  map[string]string `json:"families"`
	Platforms map[string]string `json:"platforms"`
	Features  []Feature         `json:"features"`
}

// Feature is one feature file.
type Feature struct {
	Slug        string            `json:"slug"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	Category    string            `json:"category"`
	Keywords    string            `json:"keywords,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	LastTest    string            `json:"last_test,omitempty"`
	Notes       string            `json:"notes,omitempty"`
	NotesByNum  map[string]string `json:"notes_by_num,omitempty"`
	Stats       []Stat            `json:"stats"`
}

// Stat is one client version's support: Support is y, n, a or u, Notes the
// numbers of notes_by_num it points at.
type Stat struct {
	Family   string   `json:"f"`
	Platform string   `json:"p"`
	Version  string   `json:"v"`
	Support  string   `json:"s"`
	Notes    []string `json:"n,omitempty"`
}

func main() {
	src := flag.String("src", "", "caniemail folder (with _features, _data, LICENSE)")
	out := flag.String("out", "caniemail.json", "output JSON file")
	lic := flag.String("license", "caniemail-LICENSE", "where to copy the licence")
	flag.Parse()
	if *src == "" {
		log.Fatal("gencaniemail: -src is required")
	}
	d, err := convert(*src)
	if err != nil {
		log.Fatal(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	licText, err := os.ReadFile(filepath.Join(*src, "LICENSE"))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*lic, licText, 0o644); err != nil {
		log.Fatal(err)
	}
}

var sourceRE = regexp.MustCompile(`commit ([0-9a-f]{40})\s*\(([0-9-]+)\)`)

func convert(src string) (*Data, error) {
	readme, err := os.ReadFile(filepath.Join(src, "README.md"))
	if err != nil {
		return nil, fmt.Errorf("read README: %w", err)
	}
	licText, err := os.ReadFile(filepath.Join(src, "LICENSE"))
	if err != nil {
		return nil, fmt.Errorf("read LICENSE: %w", err)
	}
	d := &Data{License: string(licText)}
	// The README names the upstream commit: "Source: the
	// `hteumeuleu/caniemail` repository, commit <sha>\n  (<date>)".
	if m := sourceRE.FindStringSubmatch(string(readme)); m != nil {
		d.Source = "hteumeuleu/caniemail@" + m[1][:12] + " (" + m[2] + ")"
	} else {
		return nil, fmt.Errorf("README names no source commit")
	}
	names, err := os.ReadFile(filepath.Join(src, "_data", "nicenames.yml"))
	if err != nil {
		return nil, fmt.Errorf("read nicenames: %w", err)
	}
	sections := parseNiceNames(string(names))
	d.Families, d.Platforms = sections["family"], sections["platform"]

	files, err := filepath.Glob(filepath.Join(src, "_features", "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		slug := strings.TrimSuffix(filepath.Base(f), ".md")
		if strings.HasPrefix(slug, "_") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		feat, err := parseFeature(slug, string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		d.Features = append(d.Features, feat)
	}
	return d, nil
}

// parseNiceNames reads the two-level "section:\n  key: value" file.
func parseNiceNames(s string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if line[0] != ' ' && line[0] != '\t' {
			cur = k
			out[cur] = map[string]string{}
			continue
		}
		out[cur][k] = unquote(strings.TrimSpace(v))
	}
	return out
}

func parseFeature(slug, s string) (Feature, error) {
	f := Feature{Slug: slug}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	// The front matter sits between the first two lines that are exactly
	// "---" (notes may contain "---" inside URLs).
	var lines []string
	fences := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "---" {
			if fences++; fences == 2 {
				break
			}
			continue
		}
		if fences == 1 {
			lines = append(lines, l)
		}
	}
	if fences < 2 {
		return f, fmt.Errorf("no front matter")
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, "{") {
			// Collect until the braces balance.
			var buf strings.Builder
			depth := 0
			for ; i < len(lines); i++ {
				l := lines[i]
				if buf.Len() == 0 {
					_, l, _ = strings.Cut(l, ":")
				}
				buf.WriteString(l)
				buf.WriteByte('\n')
				depth += strings.Count(stripStrings(l), "{") - strings.Count(stripStrings(l), "}")
				if depth <= 0 {
					break
				}
			}
			v, err := parseObject(buf.String())
			if err != nil {
				return f, fmt.Errorf("%s: %w", key, err)
			}
			switch key {
			case "stats":
				f.Stats = flattenStats(v)
			case "notes_by_num":
				f.NotesByNum = map[string]string{}
				for _, kv := range v.kids {
					f.NotesByNum[kv.key] = kv.val.str
				}
			}
			continue
		}
		val = unquote(val)
		switch key {
		case "title":
			f.Title = val
		case "description":
			f.Description = val
		case "category":
			f.Category = val
		case "keywords":
			f.Keywords = val
		case "last_test_date":
			f.LastTest = val
		case "notes":
			f.Notes = val
		case "tags":
			for _, t := range strings.Split(strings.Trim(val, "[]"), ",") {
				if t = unquote(strings.TrimSpace(t)); t != "" {
					f.Tags = append(f.Tags, t)
				}
			}
		}
	}
	if f.Title == "" || f.Category == "" {
		return f, fmt.Errorf("missing title or category")
	}
	return f, nil
}

func flattenStats(v *node) []Stat {
	var out []Stat
	for _, fam := range v.kids {
		for _, plat := range fam.val.kids {
			for _, ver := range plat.val.kids {
				fields := strings.Fields(ver.val.str)
				st := Stat{Family: fam.key, Platform: plat.key, Version: ver.key}
				for _, fl := range fields {
					if strings.HasPrefix(fl, "#") {
						st.Notes = append(st.Notes, strings.TrimPrefix(fl, "#"))
					} else if st.Support == "" {
						st.Support = fl
					}
				}
				if st.Support == "" {
					st.Support = "u"
				}
				out = append(out, st)
			}
		}
	}
	return out
}

// node is an ordered object (kids) or a string.
type node struct {
	str  string
	kids []kv
}

type kv struct {
	key string
	val *node
}

// parseObject parses {key: value, …} where keys and values are quoted or
// bare words, values may be objects, and trailing commas are allowed.
func parseObject(s string) (*node, error) {
	p := &parser{s: s}
	p.skip()
	return p.object()
}

type parser struct {
	s string
	i int
}

func (p *parser) skip() {
	for p.i < len(p.s) && strings.ContainsRune(" \t\r\n,", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *parser) object() (*node, error) {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, fmt.Errorf("want { at %d", p.i)
	}
	p.i++
	n := &node{}
	for {
		p.skip()
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("unclosed {")
		}
		if p.s[p.i] == '}' {
			p.i++
			return n, nil
		}
		key := p.word()
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, fmt.Errorf("want : after %q", key)
		}
		p.i++
		p.skip()
		var val *node
		if p.i < len(p.s) && p.s[p.i] == '{' {
			v, err := p.object()
			if err != nil {
				return nil, err
			}
			val = v
		} else {
			val = &node{str: p.word()}
		}
		n.kids = append(n.kids, kv{key, val})
	}
}

func (p *parser) word() string {
	if p.i < len(p.s) && p.s[p.i] == '"' {
		var b bytes.Buffer
		p.i++
		for p.i < len(p.s) && p.s[p.i] != '"' {
			if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
				p.i++
			}
			b.WriteByte(p.s[p.i])
			p.i++
		}
		p.i++
		return b.String()
	}
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(" \t\r\n,:{}", rune(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

func stripStrings(s string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && in:
			i++
		case s[i] == '"':
			in = !in
		case !in:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		s = s[1 : len(s)-1]
		s = strings.ReplaceAll(s, `\"`, `"`)
	}
	return s
}
