package imapd

import (
	"mime"
	"strings"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
)

// Address headers are parsed here rather than with net/mail (through the
// library's ExtractEnvelope), which drops a whole list for one odd
// address and flattens groups: RFC 3501 ENVELOPE keeps group markers
// (a start "(NIL NIL name NIL)" and an end "(NIL NIL NIL NIL)"), and
// SEARCH FROM/TO/CC/BCC match names and addresses as parsed, comments and
// encoded words included.

// addrItem is one address, or a group start (group set) or end (end set).
type addrItem struct {
	name, local, domain string
	route               string // "@a,@b" of an obsolete source route
	group               string
	end                 bool
}

type addrToken struct {
	text    string
	special byte // one of <>,:;@. or 0 for a word
	quoted  bool
}

// tokenizeAddr splits a header value into words and specials; comments
// are dropped and the last one is returned (a name when there is no
// phrase: "user@host (Real Name)").
func tokenizeAddr(s string) (toks []addrToken, comment string) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ')': // a stray ')' is dropped
			i++
		case c == '(':
			depth, j := 0, i
			var b strings.Builder
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == '(' {
					depth++
					if depth == 1 {
						continue
					}
				}
				if s[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
				b.WriteByte(s[j])
			}
			comment = strings.TrimSpace(b.String())
			i = j + 1
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			toks = append(toks, addrToken{text: b.String(), quoted: true})
			i = j + 1
		case strings.IndexByte("<>,:;@.", c) >= 0:
			toks = append(toks, addrToken{text: string(c), special: c})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte("<>,:;@.\"() \t\r\n", s[j]) < 0 {
				j++
			}
			toks = append(toks, addrToken{text: s[i:j]})
			i = j
		}
	}
	return toks, comment
}

var wordDecoder = mime.WordDecoder{CharsetReader: gomessage.CharsetReader}

func decodeWords(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// parseAddrList parses an address-list header value leniently: what cannot
// be read as an address is skipped, never the whole list.
func parseAddrList(s string) []addrItem {
	var out []addrItem
	toks, _ := tokenizeAddr(s)
	inGroup := false
	i := 0
	for i < len(toks) {
		// One element: up to a top-level ',' or ';' (outside <>).
		start, depth := i, 0
		for i < len(toks) {
			t := toks[i]
			if t.special == '<' {
				depth++
			} else if t.special == '>' && depth > 0 {
				depth--
			} else if depth == 0 && (t.special == ',' || t.special == ';') {
				break
			} else if depth == 0 && t.special == ':' && !inGroup {
				// "name:" starts a group.
				out = append(out, addrItem{group: phraseOf(toks[start:i])})
				if out[len(out)-1].group == "" {
					out[len(out)-1].group = "group" // RFC 3501 needs a name
				}
				inGroup = true
				start = i + 1
			}
			i++
		}
		if a, ok := parseOneAddr(toks[start:i], s); ok {
			out = append(out, a)
		}
		if i < len(toks) && toks[i].special == ';' && inGroup {
			out = append(out, addrItem{end: true})
			inGroup = false
		}
		i++
	}
	if inGroup {
		out = append(out, addrItem{end: true})
	}
	return out
}

func phraseOf(toks []addrToken) string {
	var words []string
	for _, t := range toks {
		if t.special == 0 {
			words = append(words, t.text)
		} else if t.special == '.' && len(words) > 0 {
			words[len(words)-1] += "."
		}
	}
	return decodeWords(strings.Join(words, " "))
}

// joinAddrPart joins a local part or domain: words and dots, no spaces.
func joinAddrPart(toks []addrToken) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}

func parseOneAddr(toks []addrToken, raw string) (addrItem, bool) {
	if len(toks) == 0 {
		return addrItem{}, false
	}
	var a addrItem
	spec := toks
	if lt := indexSpecial(toks, '<'); lt >= 0 {
		a.name = phraseOf(toks[:lt])
		gt := indexSpecial(toks[lt:], '>')
		if gt < 0 {
			spec = toks[lt+1:]
		} else {
			spec = toks[lt+1 : lt+gt]
		}
		// Obsolete route: "@a,@b:" before the address.
		if colon := indexSpecial(spec, ':'); colon >= 0 && len(spec) > 0 && spec[0].special == '@' {
			a.route = joinAddrPart(spec[:colon])
			spec = spec[colon+1:]
		}
	}
	at := -1
	for k := len(spec) - 1; k >= 0; k-- {
		if spec[k].special == '@' {
			at = k
			break
		}
	}
	if at < 0 {
		a.local = joinAddrPart(spec)
		a.domain = "MISSING_DOMAIN" // as Dovecot: a NIL host would read as a group
	} else {
		a.local, a.domain = joinAddrPart(spec[:at]), joinAddrPart(spec[at+1:])
	}
	if a.local == "" {
		return addrItem{}, false
	}
	if a.domain == "" {
		a.domain = "MISSING_DOMAIN"
	}
	if a.name == "" {
		if _, c := tokenizeAddr(raw); c != "" && len(toks) > 0 && indexSpecial(toks, '<') < 0 {
			a.name = decodeWords(c)
		}
	}
	return a, true
}

func indexSpecial(toks []addrToken, c byte) int {
	for i, t := range toks {
		if t.special == c {
			return i
		}
	}
	return -1
}

// imapAddresses converts parsed addresses; a source route is carried in
// the name (see routes.go).
func imapAddresses(items []addrItem, mark routeMark) []imap.Address {
	var out []imap.Address
	for _, it := range items {
		switch {
		case it.end:
			out = append(out, imap.Address{})
		case it.group != "":
			out = append(out, imap.Address{Mailbox: it.group})
		default:
			out = append(out, imap.Address{Name: mark.carry(it.route, it.name), Mailbox: it.local, Host: it.domain})
		}
	}
	return out
}

// matchAddresses is SEARCH FROM/TO/CC/BCC: the pattern in a display name,
// an address, a group name, or the decoded header text.
func matchAddresses(values []string, pattern string) bool {
	p := strings.ToLower(pattern)
	for _, v := range values {
		items := parseAddrList(v)
		if len(items) == 0 && strings.Contains(strings.ToLower(decodeWords(v)), p) {
			return true // nothing to parse: the text itself
		}
		for _, a := range items {
			for _, s := range []string{a.name, a.local + "@" + a.domain, a.group,
				a.name + " <" + a.local + "@" + a.domain + ">"} {
				if strings.Contains(strings.ToLower(s), p) {
					return true
				}
			}
		}
	}
	return false
}
