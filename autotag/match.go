package autotag

import (
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Fields a rule reads; header fields are read straight from the parsed
// headers.
const (
	fSubject = iota
	fFrom
	fTo
	fCc
	fBcc
	fReplyTo
	fAddressed
	fMessageID
	fBody
	fEnvelopeFrom
	fEnvelopeTo
	fUsername
	fText // Mailpit's words: sender, recipients, subject, body
	nFields
	fHeader = -1
)

// fieldIndex maps a re: field name to its index, fHeader for a header.
func fieldIndex(name string) int {
	for i, n := range [...]string{"subject", "from", "to", "cc", "bcc", "reply-to", "addressed", "message-id", "body",
		"envelope-from", "envelope-to", "username"} {
		if n == name {
			return i
		}
	}
	return fHeader
}

// view is one message as rules see it. The texts (and lower-cased texts)
// are made on first use and kept, so twenty rules read each field once.
type view struct {
	env  store.Envelope
	p    *mailparse.Message
	size int64
	now  time.Time

	made, madeLow [nFields]bool
	text, low     [nFields]string
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
func (v *view) field(f int) string {
	if v.made[f] {
		return v.text[f]
	}
	p := v.p
	var s string
	switch f {
	case fSubject:
		s = p.Subject
	case fFrom:
		s = addrText(p.From)
	case fTo:
		s = addrText(p.To...)
	case fCc:
		s = addrText(p.Cc...)
	case fBcc:
		s = addrText(v.bcc()...)
	case fReplyTo:
		s = addrText(p.ReplyTo...)
	case fAddressed:
		s = v.field(fFrom) + v.field(fTo) + v.field(fCc) + v.field(fBcc) + v.field(fReplyTo)
	case fMessageID:
		s = p.MessageID
	case fBody:
		s = p.SearchSource()
	case fEnvelopeFrom:
		s = v.env.From
	case fEnvelopeTo:
		s = strings.Join(v.env.To, "\n")
	case fUsername:
		s = v.env.Username
	case fText:
		s = v.field(fFrom) + v.env.From + "\n" + v.field(fEnvelopeTo) + "\n" + v.field(fTo) + v.field(fCc) +
			p.Subject + "\n" + v.field(fBody)
	}
	v.made[f], v.text[f] = true, s
	return s
}

func (v *view) lowered(f int) string {
	if !v.madeLow[f] {
		v.madeLow[f], v.low[f] = true, strings.ToLower(v.field(f))
	}
	return v.low[f]
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
		if r.field == fHeader {
			return r.re.MatchString(strings.Join(v.p.Headers[r.header], "\n"))
		}
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
	has := func(f int) bool { return strings.Contains(v.lowered(f), needle) }
	switch c.Field {
	case store.CondText:
		return has(fText)
	case store.CondSubject:
		return has(fSubject)
	case store.CondFrom:
		return has(fFrom)
	case store.CondTo:
		return has(fTo)
	case store.CondCc:
		return has(fCc)
	case store.CondBcc:
		return has(fBcc)
	case store.CondReplyTo:
		return has(fReplyTo)
	case store.CondAddressed:
		return has(fAddressed)
	case store.CondMessageID:
		return has(fMessageID)
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
