// Package htmlcheck tells which HTML and CSS features of a message's HTML
// body mail clients do not, or only partly, support, after the caniemail.com
// support tables (MIT; caniemail-LICENSE, converted at build time by
// internal/gencaniemail into caniemail.json, which is embedded).
//
// The check is a pure function of the HTML: one streaming pass with
// golang.org/x/net/html's tokenizer (no tree, so nesting depth costs
// nothing) and a linear CSS scanner with a bounded context stack, so hostile
// input gets an answer in time and memory linear in its size.
package htmlcheck

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

//go:embed caniemail.json
var caniemailJSON []byte

// License is the caniemail data's licence text, shipped with the data.
//
//go:embed caniemail-LICENSE
var License string

// data mirrors internal/gencaniemail's output.
type data struct {
	Source    string            `json:"source"`
	License   string            `json:"license"`
	Families  map[string]string `json:"families"`
	Platforms map[string]string `json:"platforms"`
	Features  []*Feature        `json:"features"`
}

// Feature is one caniemail feature with its support table.
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

// Stat is one client version's support: Support is "y", "n", "a" (partial)
// or "u" (unknown); Notes are keys of the feature's NotesByNum.
type Stat struct {
	Family   string   `json:"f"`
	Platform string   `json:"p"`
	Version  string   `json:"v"`
	Support  string   `json:"s"`
	Notes    []string `json:"n,omitempty"`
}

// URL is the feature's page on caniemail.com.
func (f *Feature) URL() string { return "https://www.caniemail.com/features/" + f.Slug + "/" }

// Checker holds the parsed support tables; build one with New and share it
// (it is read-only after New).
type Checker struct {
	d      data
	bySlug map[string]*Feature
	tests  int                 // features this package can detect
	all    map[string][]string // platforms with no filter
	// prep holds each feature's counts and latest rows with no filter,
	// so the common unfiltered check copies nothing.
	prep map[string]prepared
}

type prepared struct {
	counts [4]int // y, a, n, u
	latest []Stat
}

// New parses the embedded tables.
func New() (*Checker, error) {
	c := &Checker{bySlug: map[string]*Feature{}}
	if err := json.Unmarshal(caniemailJSON, &c.d); err != nil {
		return nil, fmt.Errorf("htmlcheck: parse embedded caniemail data: %w", err)
	}
	for _, f := range c.d.Features {
		c.bySlug[f.Slug] = f
		if detectable(f.Slug) {
			c.tests++
		}
	}
	c.all = c.platforms(Options{})
	c.prep = map[string]prepared{}
	for _, f := range c.d.Features {
		var p prepared
		for _, s := range f.Stats {
			p.counts[supportIndex(s.Support)]++
		}
		p.latest = latest(f.Stats)
		c.prep[f.Slug] = p
	}
	return c, nil
}

// Source names the caniemail data version the checker embeds.
func (c *Checker) Source() string { return c.d.Source }

// Feature returns the feature with that slug, or nil.
func (c *Checker) Feature(slug string) *Feature { return c.bySlug[slug] }

// Features lists every feature in the data.
func (c *Checker) Features() []*Feature { return c.d.Features }

// FamilyName and PlatformName give the display names of the data's keys.
func (c *Checker) FamilyName(k string) string   { return nameOr(c.d.Families, k) }
func (c *Checker) PlatformName(k string) string { return nameOr(c.d.Platforms, k) }

func nameOr(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

// Options narrow a check to some clients. Empty slices mean all.
type Options struct {
	Platforms []string // platform keys: "ios", "android", "windows", "desktop-webmail", …
	Families  []string // family keys: "gmail", "outlook", "apple-mail", …
}

func (o Options) keep(s Stat) bool {
	return (len(o.Platforms) == 0 || contains(o.Platforms, s.Platform)) &&
		(len(o.Families) == 0 || contains(o.Families, s.Family))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Score splits client versions into percentages that add up to 100.
type Score struct {
	Supported   float64 `json:"supported"`
	Partial     float64 `json:"partial"`
	Unsupported float64 `json:"unsupported"`
	Unknown     float64 `json:"unknown"`
}

// Client is one client (family and platform, at its latest tested version)
// that does not fully support a feature.
type Client struct {
	Family       string   `json:"family"`
	FamilyName   string   `json:"family_name"`
	Platform     string   `json:"platform"`
	PlatformName string   `json:"platform_name"`
	Version      string   `json:"version"`
	Support      string   `json:"support"` // "no", "partial" or "unknown"
	Notes        []string `json:"notes,omitempty"`
}

// Finding is a feature the HTML uses.
type Finding struct {
	Slug        string            `json:"slug"`
	Title       string            `json:"title"`
	Category    string            `json:"category"`
	Description string            `json:"description,omitempty"`
	URL         string            `json:"url"`
	Found       int               `json:"found"` // occurrences in the HTML
	Score       Score             `json:"score"` // over every client version in the table
	Clients     []Client          `json:"clients"`
	NotesByNum  map[string]string `json:"notes_by_num,omitempty"`
	// Stats are the table rows kept by the options (every version).
	Stats []Stat `json:"-"`
}

// FamilyScore is a client family's support of the features found, counted
// over its platforms at their latest tested versions.
type FamilyScore struct {
	Family string `json:"family"`
	Name   string `json:"name"`
	Score
}

// Result is a check's answer.
type Result struct {
	// Nodes counts the elements in the HTML (outside html, head and meta).
	Nodes int `json:"nodes"`
	// Tests counts the features the check looks for.
	Tests int `json:"tests"`
	// Score is over the whole message: the worst feature's share of
	// partly and not supported clients, weighted by how often the feature
	// occurs relative to Nodes (Mailpit's formula, so both agree).
	Score    Score         `json:"score"`
	Families []FamilyScore `json:"families"`
	Findings []Finding     `json:"findings"`
	// Platforms maps each platform to the families tested on it.
	Platforms map[string][]string `json:"platforms"`
	// Truncated is set when the HTML or its CSS was larger than the
	// check reads; the findings cover the part read.
	Truncated bool   `json:"truncated,omitempty"`
	Source    string `json:"data_source"`
}

// Check runs the check over an HTML document. It never fails: broken
// markup is read the way browsers read it.
func (c *Checker) Check(html string, opts Options) *Result {
	counts, nodes, truncated := walk(html)
	r := &Result{Nodes: nodes, Tests: c.tests, Truncated: truncated, Source: c.d.Source, Platforms: c.all}
	if len(opts.Platforms)+len(opts.Families) > 0 {
		r.Platforms = c.platforms(opts)
	}
	filtered := len(opts.Platforms)+len(opts.Families) > 0
	fam := map[string]*[4]int{}
	for slug, n := range counts {
		f := c.bySlug[slug]
		if f == nil || n == 0 {
			continue
		}
		fd := Finding{Slug: f.Slug, Title: f.Title, Category: f.Category, Description: f.Description, URL: f.URL(), Found: n, NotesByNum: f.NotesByNum}
		k, lat := c.prep[slug].counts, c.prep[slug].latest
		if filtered {
			k = [4]int{}
			for _, s := range f.Stats {
				if opts.keep(s) {
					fd.Stats = append(fd.Stats, s)
					k[supportIndex(s.Support)]++
				}
			}
			lat = latest(fd.Stats)
		} else {
			fd.Stats = f.Stats // shared, read-only
		}
		if len(fd.Stats) == 0 {
			continue
		}
		fd.Score = scoreOf(k)
		for _, s := range lat {
			fk := fam[s.Family]
			if fk == nil {
				fk = &[4]int{}
				fam[s.Family] = fk
			}
			fk[supportIndex(s.Support)]++
			if s.Support == "y" {
				continue
			}
			cl := Client{Family: s.Family, FamilyName: c.FamilyName(s.Family), Platform: s.Platform, PlatformName: c.PlatformName(s.Platform),
				Version: s.Version, Support: supportWord(s.Support)}
			for _, n := range s.Notes {
				if t, ok := f.NotesByNum[n]; ok {
					cl.Notes = append(cl.Notes, t)
				}
			}
			fd.Clients = append(fd.Clients, cl)
		}
		// A feature every client supports is nothing to warn about; it
		// still counted towards the family scores above.
		if fd.Score.Supported < 100 {
			r.Findings = append(r.Findings, fd)
		}
	}
	var partial, unsupported float64
	for _, fd := range r.Findings {
		if nodes == 0 {
			break
		}
		w := float64(fd.Found) / float64(nodes)
		partial = max(partial, (fd.Score.Partial+fd.Score.Unknown)*w)
		unsupported = max(unsupported, fd.Score.Unsupported*w)
	}
	partial, unsupported = min(partial, 100), min(unsupported, 100-min(partial, 100))
	r.Score = Score{Supported: 100 - partial - unsupported, Partial: partial, Unsupported: unsupported}
	for f, k := range fam {
		r.Families = append(r.Families, FamilyScore{Family: f, Name: c.FamilyName(f), Score: scoreOf(*k)})
	}
	sort.Slice(r.Families, func(i, j int) bool {
		if a, b := r.Families[i].Supported, r.Families[j].Supported; a != b {
			return a < b
		}
		return r.Families[i].Family < r.Families[j].Family
	})
	// Worst first: the share of clients that do not fully support it,
	// weighted by how often it is used.
	sort.Slice(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		wa := (100 - a.Score.Supported) * float64(a.Found)
		wb := (100 - b.Score.Supported) * float64(b.Found)
		if wa != wb {
			return wa > wb
		}
		return a.Slug < b.Slug
	})
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	return r
}

// platforms maps each platform in the data to the display names of the
// families tested on it.
func (c *Checker) platforms(opts Options) map[string][]string {
	seen := map[string]map[string]bool{}
	for _, f := range c.d.Features {
		for _, s := range f.Stats {
			if !opts.keep(s) {
				continue
			}
			if seen[s.Platform] == nil {
				seen[s.Platform] = map[string]bool{}
			}
			seen[s.Platform][c.FamilyName(s.Family)] = true
		}
	}
	out := map[string][]string{}
	for p, fams := range seen {
		for f := range fams {
			out[p] = append(out[p], f)
		}
		sort.Strings(out[p])
	}
	return out
}

// latest keeps each family/platform's last row: the tables list versions
// oldest first.
func latest(stats []Stat) []Stat {
	idx := map[[2]string]int{}
	var out []Stat
	for _, s := range stats {
		k := [2]string{s.Family, s.Platform}
		if i, ok := idx[k]; ok {
			out[i] = s
			continue
		}
		idx[k] = len(out)
		out = append(out, s)
	}
	return out
}

func supportIndex(s string) int {
	switch s {
	case "y":
		return 0
	case "a":
		return 1
	case "n":
		return 2
	}
	return 3
}

func supportWord(s string) string {
	switch s {
	case "y":
		return "yes"
	case "a":
		return "partial"
	case "n":
		return "no"
	}
	return "unknown"
}

func scoreOf(k [4]int) Score {
	total := float64(k[0] + k[1] + k[2] + k[3])
	if total == 0 {
		return Score{}
	}
	return Score{
		Supported: 100 * float64(k[0]) / total, Partial: 100 * float64(k[1]) / total,
		Unsupported: 100 * float64(k[2]) / total, Unknown: 100 * float64(k[3]) / total,
	}
}
