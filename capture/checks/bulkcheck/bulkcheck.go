// Package bulkcheck checks a message against what Gmail and Yahoo require
// of bulk senders: an unsubscribe link (RFC 2369 List-Unsubscribe), one-
// click unsubscribe (RFC 8058: an https URI, List-Unsubscribe-Post, both
// headers covered by a valid DKIM signature), a From domain aligned with
// the authenticated domains, and a plain-text part.
//
// It is pure: the parsed message and the authentication result (package
// authcheck) come in, rules with pass/fail and a reason go out.
package bulkcheck

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mailsandbox/mailsandbox/capture/checks/authcheck"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"golang.org/x/net/publicsuffix"
)

// Rule IDs, stable for clients and tests.
const (
	RuleListUnsubscribe = "list-unsubscribe"
	RuleHTTPSURI        = "list-unsubscribe-https"
	RuleOneClickPost    = "list-unsubscribe-post"
	RuleOneClickDKIM    = "one-click-dkim"
	RuleFromAlignment   = "from-alignment"
	RulePlainText       = "plain-text"
)

// Rule is one requirement's outcome.
type Rule struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Pass   bool   `json:"pass"`
	Reason string `json:"reason"`
}

// Result lists every rule; Pass is true when all pass.
type Result struct {
	Pass  bool   `json:"pass"`
	Rules []Rule `json:"rules"`
}

// Rule returns the rule with that ID, or nil.
func (r *Result) Rule(id string) *Rule {
	for i := range r.Rules {
		if r.Rules[i].ID == id {
			return &r.Rules[i]
		}
	}
	return nil
}

// Check evaluates the rules. mailFrom is the envelope sender; auth may be
// nil, which fails the rules that need a verified signature.
func Check(m *mailparse.Message, mailFrom string, auth *authcheck.Result) *Result {
	r := &Result{}
	add := func(id, title string, pass bool, reason string, args ...any) {
		r.Rules = append(r.Rules, Rule{ID: id, Title: title, Pass: pass, Reason: fmt.Sprintf(reason, args...)})
	}

	lu := strings.Join(m.Headers["List-Unsubscribe"], ",")
	uris, bad := parseURIs(lu)
	var https, mailto string
	for _, u := range uris {
		switch strings.ToLower(u.Scheme) {
		case "https":
			if https == "" {
				https = u.String()
			}
		case "mailto":
			if mailto == "" {
				mailto = u.String()
			}
		}
	}
	switch {
	case len(m.Headers["List-Unsubscribe"]) == 0:
		add(RuleListUnsubscribe, "List-Unsubscribe header (RFC 2369)", false, "no List-Unsubscribe header")
	case len(uris) == 0:
		add(RuleListUnsubscribe, "List-Unsubscribe header (RFC 2369)", false, "List-Unsubscribe has no <URI> in angle brackets: %q", trim(lu))
	case bad != "":
		add(RuleListUnsubscribe, "List-Unsubscribe header (RFC 2369)", false, "List-Unsubscribe has an unusable entry: %q", trim(bad))
	default:
		add(RuleListUnsubscribe, "List-Unsubscribe header (RFC 2369)", true, "%d unsubscribe URI(s)", len(uris))
	}
	if https != "" {
		add(RuleHTTPSURI, "An https unsubscribe URI (RFC 8058)", true, "%s", https)
	} else if mailto != "" {
		add(RuleHTTPSURI, "An https unsubscribe URI (RFC 8058)", false, "only a mailto: URI; one-click unsubscribe needs https")
	} else {
		add(RuleHTTPSURI, "An https unsubscribe URI (RFC 8058)", false, "no https URI in List-Unsubscribe")
	}

	posts := m.Headers["List-Unsubscribe-Post"]
	switch {
	case len(posts) == 0:
		add(RuleOneClickPost, "List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)", false, "no List-Unsubscribe-Post header")
	case len(posts) > 1:
		add(RuleOneClickPost, "List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)", false, "%d List-Unsubscribe-Post headers; RFC 8058 wants one", len(posts))
	case strings.TrimSpace(posts[0]) != "List-Unsubscribe=One-Click":
		add(RuleOneClickPost, "List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)", false, "List-Unsubscribe-Post is %q, want \"List-Unsubscribe=One-Click\"", trim(posts[0]))
	default:
		add(RuleOneClickPost, "List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)", true, "present")
	}

	const dkimTitle = "Both unsubscribe headers covered by a valid DKIM signature (RFC 8058 section 4)"
	switch {
	case auth == nil:
		add(RuleOneClickDKIM, dkimTitle, false, "authentication was not checked")
	case len(auth.DKIM) == 0:
		add(RuleOneClickDKIM, dkimTitle, false, "the message has no DKIM signature")
	default:
		var passing []string
		covered := ""
		for _, d := range auth.DKIM {
			if d.Result != authcheck.Pass {
				continue
			}
			passing = append(passing, d.Domain)
			if has(d.Headers, "list-unsubscribe") && has(d.Headers, "list-unsubscribe-post") {
				covered = d.Domain
			}
		}
		switch {
		case covered != "":
			add(RuleOneClickDKIM, dkimTitle, true, "the valid signature by %s covers both", covered)
		case len(passing) == 0:
			add(RuleOneClickDKIM, dkimTitle, false, "no DKIM signature verifies (%s: %s)", auth.DKIM[0].Result, auth.DKIM[0].Error)
		default:
			add(RuleOneClickDKIM, dkimTitle, false, "the valid signature(s) by %s do not cover List-Unsubscribe and List-Unsubscribe-Post (h=)", strings.Join(passing, ", "))
		}
	}

	from := strings.ToLower(domainOf(m.From.Address))
	envelope := strings.ToLower(domainOf(mailFrom))
	const alignTitle = "From domain aligned with DKIM or SPF (DMARC)"
	switch {
	case from == "":
		add(RuleFromAlignment, alignTitle, false, "no From domain")
	case auth != nil && auth.DMARC.DKIMAligned:
		add(RuleFromAlignment, alignTitle, true, "a valid DKIM signature aligns with %s", from)
	case auth != nil && auth.DMARC.SPFAligned:
		add(RuleFromAlignment, alignTitle, true, "SPF passes for %s, aligned with %s", envelope, from)
	case envelope != "" && orgDomain(envelope) == orgDomain(from):
		if auth != nil && auth.SPF.Result == authcheck.Pass {
			add(RuleFromAlignment, alignTitle, true, "the envelope sender's domain %s aligns with %s", envelope, from)
		} else {
			// Aligned by name; whether SPF would pass depends on the
			// sending IP, which a sandbox rarely knows.
			add(RuleFromAlignment, alignTitle, true, "the envelope sender's domain %s aligns with %s (SPF itself not passed: %s)", envelope, from, spfWhy(auth))
		}
	default:
		add(RuleFromAlignment, alignTitle, false, "no valid DKIM signature by %s's domain, and the envelope sender %q is of another domain", from, mailFrom)
	}
	return finish(r, m)
}

func finish(r *Result, m *mailparse.Message) *Result {
	if strings.TrimSpace(m.Text) != "" {
		r.Rules = append(r.Rules, Rule{ID: RulePlainText, Title: "A text/plain part", Pass: true, Reason: fmt.Sprintf("%d characters of plain text", len(m.Text))})
	} else if m.HTML != "" {
		r.Rules = append(r.Rules, Rule{ID: RulePlainText, Title: "A text/plain part", Pass: false, Reason: "HTML only: add a text/plain alternative"})
	} else {
		r.Rules = append(r.Rules, Rule{ID: RulePlainText, Title: "A text/plain part", Pass: false, Reason: "no text/plain part"})
	}
	r.Pass = true
	for _, x := range r.Rules {
		r.Pass = r.Pass && x.Pass
	}
	return r
}

func spfWhy(auth *authcheck.Result) string {
	if auth == nil {
		return "not checked"
	}
	if auth.SPF.Reason != "" {
		return auth.SPF.Result + ", " + auth.SPF.Reason
	}
	return auth.SPF.Result
}

// parseURIs reads RFC 2369's comma-separated <URI> list; bad is the first
// entry that is not an absolute URI in angle brackets.
func parseURIs(v string) (uris []*url.URL, bad string) {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.HasPrefix(part, "<") || !strings.Contains(part, ">") {
			if bad == "" {
				bad = part
			}
			continue
		}
		raw := strings.TrimSpace(part[1:strings.IndexByte(part, '>')])
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || (u.Scheme != "mailto" && u.Host == "") {
			if bad == "" {
				bad = part
			}
			continue
		}
		uris = append(uris, u)
	}
	return uris, bad
}

func has(list []string, h string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), h) {
			return true
		}
	}
	return false
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.Trim(addr[i+1:], "<> .")
	}
	return ""
}

func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
