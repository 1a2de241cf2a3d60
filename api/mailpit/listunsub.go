package mailpit

import (
	"fmt"
	"net/url"
	"strings"
)

// parseListUnsubscribe reads a List-Unsubscribe header (RFC 2369, 8058)
// as Mailpit does: each link in <>, separated by commas, at most one
// mailto: and one http(s) link, no spaces inside a link; comments in ()
// are dropped. It returns the usable links and, when the header breaks a
// rule, Mailpit's wording of what is wrong.
func parseListUnsubscribe(v string) (links []string, problems string) {
	links = []string{}
	v = stripComments(strings.TrimSpace(v))
	if !strings.Contains(v, "<") || !strings.Contains(v[strings.Index(v, "<"):], ">") {
		return links, fmt.Sprintf("\"%s\" no valid unsubscribe links found", v)
	}
	if !strings.HasPrefix(v, "<") || !strings.HasSuffix(v, ">") {
		return links, fmt.Sprintf("\"%s\" should be enclosed in <>", v)
	}
	var inner, joins []string
	rest := v
	for {
		open := strings.Index(rest, "<")
		if open < 0 {
			break
		}
		if len(inner) > 0 {
			joins = append(joins, rest[:open])
		}
		end := strings.Index(rest[open:], ">")
		if end < 0 {
			break
		}
		inner = append(inner, rest[open+1:open+end])
		rest = rest[open+end+1:]
	}
	var errs []string
	if len(inner) > 2 {
		return links, fmt.Sprintf("\"%s\" should include a maximum of one email and one HTTP link", v)
	}
	for _, j := range joins {
		if strings.TrimSpace(j) != "," {
			return links, fmt.Sprintf("\"%s\" <> should be split with a comma and optional spaces", v)
		}
	}
	var mailto, web bool
	for _, l := range inner {
		lower := strings.ToLower(l)
		switch {
		case strings.ContainsAny(l, " \t\r\n"):
			errs = append(errs, fmt.Sprintf("\"%s\" should not contain spaces", l))
			continue
		case strings.HasPrefix(l, "mailto:") && len(l) > 7 && isAlnum(l[7]):
			if mailto {
				errs = append(errs, fmt.Sprintf("\"%s\" should only contain one mailto:", l))
				continue
			}
			mailto = true
		case (strings.HasPrefix(lower, "http://") && len(l) > 7 && isAlnum(l[7])) ||
			(strings.HasPrefix(lower, "https://") && len(l) > 8 && isAlnum(l[8])):
			if web {
				errs = append(errs, fmt.Sprintf("\"%s\" should only contain one HTTP link", l))
				continue
			}
			web = true
		default:
			errs = append(errs, fmt.Sprintf("\"%s\" should start with either http(s):// or mailto:", l))
			continue
		}
		if _, err := url.ParseRequestURI(l); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		links = append(links, l)
	}
	return links, strings.Join(errs, ", ")
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// stripComments removes (comments), shortest first.
func stripComments(v string) string {
	for {
		open := strings.Index(v, "(")
		if open < 0 {
			return v
		}
		end := strings.Index(v[open:], ")")
		if end < 0 {
			return v
		}
		v = strings.TrimSpace(v[:open] + v[open+end+1:])
	}
}
