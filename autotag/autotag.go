// Package autotag finds the tags of a message at ingest: its X-Tags header
// (comma-separated), the plus-address parts of its addresses
// (bob+signup+eu@example.com tags "signup" and "eu"; From, To, Cc and
// the envelope), the SMTP AUTH user, and tag rules. It works on the
// parsed message in memory; the store calls it through
// store.Options.Tagger and stores what it returns in the ingest's own
// transaction.
//
// A rule is NAME=QUERY: messages matching QUERY get the tag NAME. QUERY is
// either Mailpit's search syntax (api/mailpit/search: words, "phrases",
// from: to: cc: bcc: reply-to: addressed: subject: message-id: tag:,
// is:tagged, has:attachment, has:inline, larger:, smaller:, before:,
// after:, negation with - or !; every term must hold), or
//
//	re:FIELD:REGEXP
//
// a Go (RE2) regular expression that must match some value of FIELD:
// subject, from, to, cc, bcc, reply-to, addressed, message-id, body (the
// plain text, else the HTML's text), envelope-from, envelope-to,
// username, or else the name of a header (any case: re:X-Mailer:^PHP).
// Names and addresses are matched as "Name <address>". Regular
// expressions are case-sensitive; (?i) makes them not. Rules compile
// once, at start-up; tag: and is:tagged in a rule see the tags found
// before it (X-Tags, plus-addresses, the user, earlier rules).
package autotag

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/api/mailpit/search"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// ErrRule wraps every error of ParseRule.
var ErrRule = errors.New("invalid tag rule")

// Options say where tags come from. The zero value reads X-Tags and
// plus-addresses and has no rules.
type Options struct {
	NoXTags         bool // ignore the X-Tags header
	NoPlusAddresses bool // ignore bob+tag@ addresses
	Username        bool // tag with the SMTP AUTH user name
	Rules           []Rule
	// Now is the clock for before:/after: in rules; nil means time.Now.
	Now func() time.Time
}

// Rule is one compiled NAME=QUERY.
type Rule struct {
	Tag    string
	conds  []store.Cond
	re     *regexp.Regexp
	field  int    // the field re matches (fSubject…), or fHeader
	header string // with fHeader: the header's canonical name
}

// ParseRule compiles "NAME=QUERY".
func ParseRule(s string) (Rule, error) {
	name, query, ok := strings.Cut(s, "=")
	if !ok {
		return Rule{}, fmt.Errorf("%w %q: want NAME=QUERY", ErrRule, s)
	}
	tag, err := store.ValidTag(name)
	if err != nil {
		return Rule{}, fmt.Errorf("%w %q: tag name: %v", ErrRule, s, err)
	}
	query = strings.TrimSpace(query)
	r := Rule{Tag: tag}
	if rest, ok := strings.CutPrefix(query, "re:"); ok {
		field, expr, ok := strings.Cut(rest, ":")
		field = strings.ToLower(strings.TrimSpace(field))
		if !ok || field == "" || expr == "" {
			return Rule{}, fmt.Errorf("%w %q: want re:FIELD:REGEXP", ErrRule, s)
		}
		r.field = fieldIndex(field)
		if r.field == fHeader {
			if !validHeaderName(field) {
				return Rule{}, fmt.Errorf("%w %q: unknown field %q", ErrRule, s, field)
			}
			r.header = textproto.CanonicalMIMEHeaderKey(field)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return Rule{}, fmt.Errorf("%w %q: %v", ErrRule, s, err)
		}
		r.re = re
		return r, nil
	}
	conds, err := search.Parse(query, time.UTC)
	if err != nil {
		return Rule{}, fmt.Errorf("%w %q: %v", ErrRule, s, err)
	}
	if len(conds) == 0 {
		return Rule{}, fmt.Errorf("%w %q: empty query", ErrRule, s)
	}
	r.conds = conds
	return r, nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return s != ""
}

// Tagger finds tags; it is immutable and safe for concurrent use.
type Tagger struct {
	opts Options
}

// New returns a Tagger.
func New(opts Options) *Tagger {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Tagger{opts: opts}
}

// Tags returns the message's tags, cleaned and at most
// store.MaxTagsPerMessage (the store cleans again; a hostile X-Tags costs
// no more than reading it once).
func (t *Tagger) Tags(env store.Envelope, p *mailparse.Message, raw []byte) []string {
	var set tagSet
	if !t.opts.NoXTags {
		for _, v := range p.Headers["X-Tags"] {
			for len(v) > 0 && !set.full() {
				var one string
				one, v, _ = strings.Cut(v, ",")
				set.add(one)
			}
		}
	}
	if !t.opts.NoPlusAddresses {
		addrs := make([]string, 0, 4+len(env.To))
		addrs = append(addrs, p.From.Address, env.From)
		for _, a := range p.To {
			addrs = append(addrs, a.Address)
		}
		for _, a := range p.Cc {
			addrs = append(addrs, a.Address)
		}
		addrs = append(addrs, env.To...)
		for _, a := range addrs {
			local, _, ok := strings.Cut(strings.Trim(strings.TrimSpace(a), "<>"), "@")
			if !ok {
				continue
			}
			_, plus, ok := strings.Cut(local, "+")
			for ok && !set.full() {
				var one string
				one, plus, ok = strings.Cut(plus, "+")
				set.add(one)
			}
		}
	}
	if t.opts.Username && env.Username != "" {
		set.add(env.Username)
	}
	if len(t.opts.Rules) > 0 {
		v := view{env: env, p: p, size: int64(len(raw)), now: t.opts.Now()}
		for i := range t.opts.Rules {
			r := &t.opts.Rules[i]
			if set.full() {
				break
			}
			if set.has(r.Tag) {
				continue
			}
			if v.matches(r, &set) {
				set.add(r.Tag)
			}
		}
	}
	return set.list
}

// tagSet is a small ordered set, keyed case-insensitively.
type tagSet struct {
	list []string
	keys map[string]bool
}

func (s *tagSet) full() bool { return len(s.list) >= store.MaxTagsPerMessage }

func (s *tagSet) has(t string) bool { return s.keys[strings.ToLower(t)] }

func (s *tagSet) add(t string) {
	t = store.CleanTag(t)
	if t == "" || s.full() {
		return
	}
	k := strings.ToLower(t)
	if s.keys == nil {
		s.keys = map[string]bool{}
	}
	if s.keys[k] {
		return
	}
	s.keys[k] = true
	s.list = append(s.list, t)
}
