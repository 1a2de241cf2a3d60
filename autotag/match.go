package autotag

import (
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// view is one message as rules see it. The lower-cased texts are made on
// first use and kept, so twenty rules read each field once.
type view struct {
	env  store.Envelope
	p    *mailparse.Message
	size int64
	now  time.Time

	lower map[string]string // field → lower-cased text
	plain map[string]string // field → text as is (regular expressions)
}

func addrText(as ...mailparse.Address) string {
	var b strings.Builder
	for _, a := range as {
		if a.Address == "" && a.Name == "" {
			continue
		}
		b.WriteString(a.Name)
		b.WriteString(" <")
		b.WriteString(a.Address)
		b.WriteString(">\n")
	}
	return b.String()
}

// field returns a field's text, one value a line.
func (v *view) field(f string) string {
	if s, ok := v.plain[f]; ok {
		return s
	}
	p := v.p
	var s string
	switch f {
	case "subject":
		s = p.Subject
	case "from":
		s = addrText(p.From)
	case "to":
		s = addrText(p.To...)
	case "cc":
		s = addrText(p.Cc...)
	case "bcc":
		s = addrText(v.bcc()...)
	case "reply-to":
		s = addrText(p.ReplyTo...)
	case "addressed":
		s = addrText(p.From) + addrText(p.To...) + addrText(p.Cc...) + addrText(v.bcc()...) + addrText(p.ReplyTo...)
	case "message-id":
		s = p.MessageID
	case "body":
		s = p.SearchSource()
	case "envelope-from":
		s = v.env.From
	case "envelope-to":
		s = strings.Join(v.env.To, "\n")
	case "username":
		s = v.env.Username
	case "text": // Mailpit's words: sender, recipients, subject, body
		s = addrText(p.From) + v.env.From + "\n" + strings.Join(v.env.To, "\n") + "\n" + addrText(p.To...) + addrText(p.Cc...) +
			p.Subject + "\n" + p.SearchSource()
	default: // a header
		for k, vals := range p.Headers {
			if strings.EqualFold(k, f) {
				s = strings.Join(vals, "\n")
				break
			}
		}
	}
	if v.plain == nil {
		v.plain = map[string]string{}
	}
	v.plain[f] = s
	return s
}

func (v *view) low(f string) string {
	if s, ok := v.lower[f]; ok {
		return s
	}
	s := strings.ToLower(v.field(f))
	if v.lower == nil {
		v.lower = map[string]string{}
	}
	v.lower[f] = s
	return s
}

// bcc is what the store calls Bcc: the Bcc header and the envelope
// recipients To and Cc do not name.
func (v *view) bcc() []mailparse.Address {
	named := map[string]bool{}
	for _, a := range append(append(append([]mailparse.Address{}, v.p.To...), v.p.Cc...), v.p.Bcc...) {
		named[store.NormalizeAddress(a.Address)] = true
	}
	out := append([]mailparse.Address{}, v.p.Bcc...)
	for _, rc := range v.env.To {
		mb := store.NormalizeAddress(rc)
		if mb == "" || named[mb] {
			continue
		}
		named[mb] = true
		out = append(out, mailparse.Address{Address: mb})
	}
	return out
}

func (v *view) matches(r *Rule, tags *tagSet) bool {
	if r.re != nil {
		return r.re.MatchString(v.field(r.field))
	}
	for _, c := range r.conds {
		if v.cond(c, tags) == c.Not {
			return false
		}
	}
	return true
}

// cond evaluates a condition (ignoring Not) as the store's SQL would on
// the stored message: case-insensitive substrings, new mail unread.
func (v *view) cond(c store.Cond, tags *tagSet) bool {
	needle := strings.ToLower(c.Text)
	has := func(f string) bool { return strings.Contains(v.low(f), needle) }
	switch c.Field {
	case store.CondText:
		return has("text")
	case store.CondSubject:
		return has("subject")
	case store.CondFrom:
		return has("from")
	case store.CondTo:
		return has("to")
	case store.CondCc:
		return has("cc")
	case store.CondBcc:
		return has("bcc")
	case store.CondReplyTo:
		return has("reply-to")
	case store.CondAddressed:
		return has("addressed")
	case store.CondMessageID:
		return has("message-id")
	case store.CondTag:
		return tags.has(strings.TrimSpace(c.Text))
	case store.CondTagged:
		return len(tags.list) > 0
	case store.CondRead:
		return false
	case store.CondAttachment, store.CondInline:
		for _, a := range v.p.Attachments {
			if a.Inline == (c.Field == store.CondInline) {
				return true
			}
		}
		return false
	case store.CondLarger:
		return v.size > c.Bytes
	case store.CondSmaller:
		return v.size < c.Bytes
	case store.CondAfter:
		return !v.now.Before(c.Time)
	case store.CondBefore:
		return !v.now.After(c.Time)
	}
	return false
}
