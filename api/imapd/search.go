package imapd

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode bodies and headers in any charset
	"github.com/emersion/go-message/mail"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func (sess *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sess.touch()
	sel := sess.sel
	all := sel.resolve(imap.SeqSet{{Start: 1, Stop: 0}})
	var maxSeq, maxUID uint32
	if len(all) > 0 {
		maxSeq, maxUID = all[len(all)-1].seq, all[len(all)-1].entry.UID
	}
	sel.staticCriteria(criteria, maxSeq, maxUID)
	// Flags as the store holds them now, \Recent as this session has it.
	latest := sel.view.sync(sess.ctx())

	data := &imap.SearchData{}
	var seqSet imap.SeqSet
	var uidSet imap.UIDSet
	bodies := needsBody(criteria)
	var raws map[string][]byte
	for i, t := range all {
		// Criteria that read the message: read them in batches.
		if bodies && i%searchBatch == 0 {
			ids := make([]string, 0, searchBatch)
			for _, u := range all[i:min(i+searchBatch, len(all))] {
				ids = append(ids, u.entry.MessageID)
			}
			var err error
			if raws, err = sess.srv.st.RawMany(sess.ctx(), ids); err != nil {
				return nil, sess.imapError(err, "search")
			}
		}
		m := &candidate{sess: sess, target: t, recent: sel.isRecent(t.entry.UID)}
		if raw, ok := raws[t.entry.MessageID]; ok {
			m.raw, m.loaded = raw, true
		}
		if k, ok := slices.BinarySearchFunc(latest, t.entry.UID, func(e store.Entry, u uint32) int { return cmp.Compare(e.UID, u) }); ok {
			m.target.entry.Flags = latest[k].Flags
		}
		ok, err := m.match(criteria)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		uidSet.AddNum(imap.UID(t.entry.UID))
		num := t.seq
		if kind == imapserver.NumKindUID {
			num = t.entry.UID
		} else {
			seqSet.AddNum(t.seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options.ReturnSave {
		sel.searchRes = uidSet
	}
	return data, nil
}

// searchBatch is how many messages a SEARCH reads from the store at once.
const searchBatch = 256

// needsBody reports whether any criterion reads the message itself.
func needsBody(c *imap.SearchCriteria) bool {
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if needsBody(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if needsBody(&c.Or[i][0]) || needsBody(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// staticCriteria resolves "*" and "$" in every set of the criteria.
func (sel *selected) staticCriteria(c *imap.SearchCriteria, maxSeq, maxUID uint32) {
	var seqs []imap.SeqSet
	for _, s := range c.SeqNum {
		switch set := sel.static(s, maxSeq, maxUID).(type) {
		case imap.SeqSet:
			seqs = append(seqs, set)
		case imap.UIDSet:
			c.UID = append(c.UID, set)
		}
	}
	c.SeqNum = seqs
	for i, s := range c.UID {
		c.UID[i] = sel.static(s, maxSeq, maxUID).(imap.UIDSet)
	}
	for i := range c.Not {
		sel.staticCriteria(&c.Not[i], maxSeq, maxUID)
	}
	for i := range c.Or {
		sel.staticCriteria(&c.Or[i][0], maxSeq, maxUID)
		sel.staticCriteria(&c.Or[i][1], maxSeq, maxUID)
	}
}

// candidate is one message under test; its body is read from the store
// only when a criterion needs it, and once.
type candidate struct {
	sess   *session
	target target
	recent bool
	raw    []byte
	loaded bool
	gone   bool
	// lower is raw lower-cased and plain whether it is searched as it is
	// (see surelyLacks); worked out on first use.
	lower []byte
	plain bool
}

func (m *candidate) body() ([]byte, error) {
	if !m.loaded {
		m.loaded = true
		raw, err := m.sess.srv.st.Raw(m.sess.ctx(), m.target.entry.MessageID)
		if errors.Is(err, store.ErrNotFound) {
			m.gone = true
			return nil, nil
		}
		if err != nil {
			return nil, m.sess.imapError(err, "search")
		}
		m.raw = raw
	}
	return m.raw, nil
}

func (m *candidate) entity() (*gomessage.Entity, error) {
	raw, err := m.body()
	if err != nil {
		return nil, err
	}
	e, err := gomessage.Read(bytes.NewReader(raw))
	if e == nil {
		e, _ = gomessage.New(gomessage.Header{}, bytes.NewReader(nil))
	}
	_ = err // unknown charsets and encodings still give an entity
	return e, nil
}

func hasFlag(flags []string, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(x, string(f)) {
			return true
		}
	}
	return false
}

// dayOf drops time and zone: RFC 3501 compares dates only.
func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func inDates(t, since, before time.Time) bool {
	d := dayOf(t)
	if !since.IsZero() && d.Before(dayOf(since)) {
		return false
	}
	if !before.IsZero() && !d.Before(dayOf(before)) {
		return false
	}
	return true
}

func (m *candidate) match(c *imap.SearchCriteria) (bool, error) {
	e := m.target.entry
	for _, set := range c.SeqNum {
		if !set.Contains(m.target.seq) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if !set.Contains(imap.UID(e.UID)) {
			return false, nil
		}
	}
	for _, f := range c.Flag {
		if !hasFlag(e.Flags, f) && !(m.recent && strings.EqualFold(string(f), `\Recent`)) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(e.Flags, f) || (m.recent && strings.EqualFold(string(f), `\Recent`)) {
			return false, nil
		}
	}
	if c.Larger != 0 && e.Size <= c.Larger {
		return false, nil
	}
	if c.Smaller != 0 && e.Size >= c.Smaller {
		return false, nil
	}
	if !inDates(e.ReceivedAt, c.Since, c.Before) {
		return false, nil
	}
	if len(c.Header) > 0 || len(c.Body) > 0 || len(c.Text) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		if _, err := m.body(); err != nil {
			return false, err
		}
		if m.gone {
			return false, nil
		}
		for _, s := range append(c.Text[:len(c.Text):len(c.Text)], c.Body...) {
			if m.surelyLacks(s) {
				return false, nil
			}
		}
		ent, err := m.entity()
		if err != nil {
			return false, err
		}
		h := mail.Header{Header: ent.Header}
		for _, hf := range c.Header {
			switch strings.ToLower(hf.Key) {
			case "from", "to", "cc", "bcc":
				if hf.Value == "" {
					break // any message with the field: as for other headers
				}
				var values []string
				for f := h.FieldsByKey(hf.Key); f.Next(); {
					values = append(values, f.Value())
				}
				if !matchAddresses(values, hf.Value) {
					return false, nil
				}
				continue
			}
			if !matchFields(h.FieldsByKey(hf.Key), hf.Value) {
				return false, nil
			}
		}
		if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
			t, err := h.Date()
			if err != nil || t.IsZero() || !inDates(t, c.SentSince, c.SentBefore) {
				return false, nil
			}
		}
		for _, s := range c.Text {
			ent, _ := m.entity()
			if !matchEntity(ent, s, true) {
				return false, nil
			}
		}
		for _, s := range c.Body {
			ent, _ := m.entity()
			if !matchEntity(ent, s, false) {
				return false, nil
			}
		}
	}
	for i := range c.Not {
		ok, err := m.match(&c.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range c.Or {
		a, err := m.match(&c.Or[i][0])
		if err != nil {
			return false, err
		}
		if a {
			continue
		}
		b, err := m.match(&c.Or[i][1])
		if err != nil || !b {
			return false, err
		}
	}
	return true, nil
}

// surelyLacks reports whether the message cannot hold pattern in the text
// TEXT and BODY search (decoded headers and text parts): true only when
// the raw message lacks it and nothing in the message is decoded on the
// way (no encoded words, transfer encodings or charsets but UTF-8 and
// US-ASCII), so the searched text is raw text. A pattern with white space
// could span a folded header line, so it is never ruled out here. Most
// mail is plain, and this spares parsing it.
func (m *candidate) surelyLacks(pattern string) bool {
	if pattern == "" || strings.ContainsAny(pattern, " \t\r\n") {
		return false
	}
	if m.lower == nil {
		m.lower = bytes.ToLower(m.raw)
		m.plain = isPlain(m.lower)
	}
	return m.plain && !bytes.Contains(m.lower, []byte(strings.ToLower(pattern)))
}

// isPlain reports whether a lower-cased message is searched as it is (see
// surelyLacks).
func isPlain(lower []byte) bool {
	if bytes.Contains(lower, []byte("=?")) || bytes.Contains(lower, []byte("base64")) || bytes.Contains(lower, []byte("quoted-printable")) {
		return false
	}
	for rest := lower; ; {
		i := bytes.Index(rest, []byte("charset"))
		if i < 0 {
			return true
		}
		rest = rest[i+len("charset"):]
		ok := false
		for _, cs := range []string{`=utf-8`, `="utf-8"`, `=us-ascii`, `="us-ascii"`} {
			if bytes.HasPrefix(rest, []byte(cs)) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
}

// matchFields: an empty pattern matches any message with the field.
func matchFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

// matchEntity looks for pattern in the decoded text parts (and, for TEXT,
// the headers) of a message, case-insensitively.
func matchEntity(e *gomessage.Entity, pattern string, headers bool) bool {
	if pattern == "" {
		return true
	}
	if headers && matchFields(e.Header.Fields(), pattern) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(p, pattern, headers) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	b, _ := io.ReadAll(e.Body)
	return bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(pattern)))
}
