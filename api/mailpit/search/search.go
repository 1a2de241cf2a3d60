// Package search compiles Mailpit's search syntax into store conditions:
// words and "quoted phrases" (all must match), negation with a leading
// - or !, the prefixes to: from: cc: bcc: reply-to: addressed: subject:
// message-id: tag:, the flags is:read is:unread is:tagged has:attachment
// has:inline, larger:/smaller: sizes and before:/after: dates (in a time
// zone). Matching is case-insensitive.
package search

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // tz names work in a scratch container too
	"unicode"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// ErrSyntax wraps every error Parse returns.
var ErrSyntax = errors.New("invalid search")

// MaxQueryBytes bounds a query: longer ones are refused rather than
// compiled into thousands of conditions.
const MaxQueryBytes = 4096

// Location returns the time zone named by tz ("" is UTC).
func Location(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown time zone %q", ErrSyntax, tz)
	}
	return loc, nil
}

// Parse compiles query into conditions that must all hold; dates without
// an offset are read in loc (nil: UTC). An empty query gives no
// conditions. Unreadable dates are errors: silently dropping a before:
// would make DELETE /search delete more than was asked.
func Parse(query string, loc *time.Location) ([]store.Cond, error) {
	if len(query) > MaxQueryBytes {
		return nil, fmt.Errorf("%w: query longer than %d bytes", ErrSyntax, MaxQueryBytes)
	}
	if loc == nil {
		loc = time.UTC
	}
	var conds []store.Cond
	for _, arg := range splitArgs(query) {
		c, ok, err := term(arg, loc)
		if err != nil {
			return nil, err
		}
		if ok {
			conds = append(conds, c)
		}
	}
	return conds, nil
}

// splitArgs splits on white space outside double quotes and drops the
// quotes: `subject:"order 123" -x` is ["subject:order 123", "-x"]. An
// unclosed quote runs to the end, as in Mailpit.
func splitArgs(s string) []string {
	var args []string
	var b strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case unicode.IsSpace(r) && !quoted:
			if have {
				args = append(args, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, b.String())
	}
	return args
}

// prefix is a field prefix and the condition it makes.
type prefix struct {
	name  string
	field store.CondField
	raw   bool // keep the value as typed (subject), else clean it
}

func prefixes() []prefix {
	return []prefix{
		{"to:", store.CondTo, false},
		{"from:", store.CondFrom, false},
		{"cc:", store.CondCc, false},
		{"bcc:", store.CondBcc, false},
		{"reply-to:", store.CondReplyTo, false},
		{"addressed:", store.CondAddressed, false},
		{"subject:", store.CondSubject, true},
		{"message-id:", store.CondMessageID, false},
		{"tag:", store.CondTag, false},
	}
}

// term compiles one argument; ok is false for an argument that selects
// nothing (empty once cleaned).
func term(arg string, loc *time.Location) (store.Cond, bool, error) {
	var c store.Cond
	if len(arg) > 1 && (arg[0] == '-' || arg[0] == '!') {
		c.Not, arg = true, arg[1:]
	}
	lw := strings.ToLower(arg)
	for _, p := range prefixes() {
		if strings.HasPrefix(lw, p.name) {
			v := arg[len(p.name):]
			if !p.raw {
				v = clean(v)
			}
			if v == "" {
				return c, false, nil
			}
			c.Field, c.Text = p.field, v
			return c, true, nil
		}
	}
	switch lw {
	case "is:read":
		c.Field = store.CondRead
		return c, true, nil
	case "is:unread":
		c.Field, c.Not = store.CondRead, !c.Not
		return c, true, nil
	case "is:tagged":
		c.Field = store.CondTagged
		return c, true, nil
	case "has:attachment", "has:attachments":
		c.Field = store.CondAttachment
		return c, true, nil
	case "has:inline", "has:inlines":
		c.Field = store.CondInline
		return c, true, nil
	}
	for _, d := range []struct {
		name  string
		field store.CondField
	}{{"after:", store.CondAfter}, {"before:", store.CondBefore}} {
		if strings.HasPrefix(lw, d.name) {
			v := clean(arg[len(d.name):])
			if v == "" {
				return c, false, nil
			}
			t, err := parseDate(v, loc)
			if err != nil {
				return c, false, fmt.Errorf("%w: %s want a date such as 2026-01-02 or 2026-01-02 15:04, got %q", ErrSyntax, d.name, v)
			}
			c.Field, c.Time = d.field, t
			return c, true, nil
		}
	}
	for _, s := range []struct {
		name  string
		field store.CondField
	}{{"larger:", store.CondLarger}, {"smaller:", store.CondSmaller}} {
		// A size Mailpit cannot read makes the whole argument a word.
		if strings.HasPrefix(lw, s.name) {
			if n := sizeBytes(clean(arg[len(s.name):])); n > 0 {
				c.Field, c.Bytes = s.field, n
				return c, true, nil
			}
		}
	}
	v := clean(arg)
	if v == "" {
		return c, false, nil
	}
	c.Field, c.Text = store.CondText, v
	return c, true, nil
}

// clean drops the characters Mailpit removes from search values (quotes,
// angle brackets, commas, semicolons, parentheses, line breaks, tabs) and
// folds runs of spaces.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '\t', '<', '>', '"', ',', ';', '(', ')', '\uFEFF':
			return ' '
		}
		return r
	}, s)
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// sizeBytes reads "2M", "10k", "1.5mb", "300"; 0 when unreadable.
func sizeBytes(v string) int64 {
	v = strings.ToLower(strings.TrimSpace(v))
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	num, unit := v[:i], strings.TrimSpace(v[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f > 1<<50 {
		return 0
	}
	switch unit {
	case "":
		return int64(f)
	case "k", "kb":
		return int64(f * 1024)
	case "m", "mb":
		return int64(f * 1024 * 1024)
	}
	return 0
}

// dateLayouts are the forms before: and after: accept.
func dateLayouts() []string {
	return []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05",
		"2006-01-02T15:04",
		"2006-01-02 15:04:05",
		"2006-01-02 15:04",
		"2006-01-02",
		"2006/01/02",
		"2006/01/02 15:04:05",
		"2006/01/02 15:04",
		"02 Jan 2006",
		"2 Jan 2006",
		"Jan 2, 2006",
		"January 2, 2006",
		"2 January 2006",
		time.RFC1123Z,
		time.RFC1123,
		"Jan 2 2006",
		"January 2 2006",
	}
}

func parseDate(v string, loc *time.Location) (time.Time, error) {
	for _, l := range dateLayouts() {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
		// clean lower-cased the value; month names and T/Z want their case.
		if t, err := time.ParseInLocation(l, strings.ToUpper(v[:1])+v[1:], loc); err == nil {
			return t, nil
		}
		if t, err := time.ParseInLocation(l, strings.ToUpper(v), loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("unreadable date")
}
