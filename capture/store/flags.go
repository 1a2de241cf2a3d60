package store

import (
	"sort"
	"strings"
)

// systemFlags maps the lower-cased IMAP system flags to their canonical
// spelling; keywords keep the case the client gave them.
func canonicalFlag(f string) string {
	switch strings.ToLower(f) {
	case `\seen`:
		return `\Seen`
	case `\answered`:
		return `\Answered`
	case `\flagged`:
		return `\Flagged`
	case `\deleted`:
		return `\Deleted`
	case `\draft`:
		return `\Draft`
	case `\recent`:
		return `\Recent`
	}
	return f
}

// normFlags returns flags canonical, de-duplicated and sorted.
func normFlags(flags []string) []string {
	set := map[string]bool{}
	for _, f := range flags {
		f = canonicalFlag(strings.TrimSpace(f))
		if f == "" || f == `\Recent` || strings.ContainsAny(f, " \t\r\n") {
			continue
		}
		set[f] = true
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// flagCols splits flags into the seen column and the text of the others.
func flagCols(flags []string) (seen int, rest string) {
	var others []string
	for _, f := range normFlags(flags) {
		if f == FlagSeen {
			seen = 1
			continue
		}
		others = append(others, f)
	}
	return seen, strings.Join(others, " ")
}

// colsFlags is the inverse of flagCols.
func colsFlags(seen bool, rest string) []string {
	out := strings.Fields(rest)
	if seen {
		out = append(out, FlagSeen)
		sort.Strings(out)
	}
	if out == nil {
		out = []string{}
	}
	return out
}
