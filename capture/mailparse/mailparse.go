// Package mailparse turns the raw bytes of a captured message into the fields
// people search and read: addresses, subject, decoded text and HTML, and the
// attachment tree. Captured mail is hostile and often malformed, so parsing
// never refuses a message: whatever can be read is returned together with a
// note of what could not.
package mailparse

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers charsets beyond UTF-8 and ASCII
	gomail "github.com/emersion/go-message/mail"
)

// Limits that keep one hostile message from costing unbounded work.
const (
	maxParts      = 1000
	maxDepth      = 30
	maxPartBytes  = 64 << 20
	snippetRunes  = 200
	maxSearchText = 1 << 20
)

// Address is a mailbox with an optional display name.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Part describes one leaf of the MIME tree that is an attachment or an
// inline resource (an image referenced by cid:, say).
type Part struct {
	ID          string `json:"part"` // dotted path, IMAP style: "2", "1.3"
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"` // decoded bytes
	ContentID   string `json:"content_id"`
	Inline      bool   `json:"inline"`
}

// Message is everything a reader wants from a message besides its raw bytes.
type Message struct {
	From           Address
	To, Cc, Bcc    []Address
	ReplyTo        []Address
	Subject        string
	Date           time.Time // zero when absent or unparsable
	MessageID      string    // without angle brackets
	Headers        map[string][]string
	Text           string // first text/plain body, UTF-8
	HTML           string // first text/html body, UTF-8
	Attachments    []Part
	HasAttachments bool
	Snippet        string
	// Problems lists what could not be parsed; the message is still usable.
	Problems []string
}

// ParseError joins the problems into one line, empty when there were none.
func (m *Message) ParseError() string { return strings.Join(m.Problems, "; ") }

// SearchText is the lower-cased text used for substring search of bodies.
func (m *Message) SearchText() string { return strings.ToLower(m.SearchSource()) }

// SearchSource is the body text that search looks in, before lower-casing:
// the plain text, else the HTML's text, bounded in length.
func (m *Message) SearchSource() string {
	t := m.Text
	if t == "" && m.HTML != "" {
		t = StripHTML(m.HTML)
	}
	if len(t) > maxSearchText {
		t = t[:maxSearchText]
	}
	return t
}

// Parse reads raw as an RFC 5322 message. It always returns a Message; the
// error is non-nil only for input that has no header at all.
func Parse(raw []byte) *Message {
	m := &Message{Headers: map[string][]string{}}
	e, err := readEntity(raw)
	if err != nil && !message.IsUnknownCharset(err) {
		if e == nil {
			m.Problems = append(m.Problems, fmt.Sprintf("read header: %v", err))
			m.Snippet = snippet(string(raw))
			return m
		}
		m.Problems = append(m.Problems, err.Error())
	}
	if e == nil {
		m.Problems = append(m.Problems, "no header")
		return m
	}
	m.readHeader(e.Header)
	w := walker{m: m, size: len(raw)}
	w.walk(e, "", 0)
	if m.Text != "" {
		m.Snippet = snippet(m.Text)
	} else if m.HTML != "" {
		m.Snippet = snippet(StripHTML(m.HTML))
	}
	return m
}

func (m *Message) readHeader(h message.Header) {
	mh := gomail.Header{Header: h}
	fields := h.Fields()
	for fields.Next() {
		k := textprotoKey(fields.Key())
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		m.Headers[k] = append(m.Headers[k], v)
	}
	if s, err := mh.Subject(); err == nil {
		m.Subject = s
	} else {
		m.Subject = h.Get("Subject")
	}
	if from := m.addressList(mh, "From"); len(from) > 0 {
		m.From = from[0]
	}
	m.To = m.addressList(mh, "To")
	m.Cc = m.addressList(mh, "Cc")
	m.Bcc = m.addressList(mh, "Bcc")
	m.ReplyTo = m.addressList(mh, "Reply-To")
	if h.Has("Date") {
		if d, err := mail.ParseDate(h.Get("Date")); err == nil {
			m.Date = d.UTC()
		} else {
			m.Problems = append(m.Problems, fmt.Sprintf("date: %v", err))
		}
	}
	m.MessageID = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// addressList parses an address header leniently: if the list as a whole is
// malformed, each comma-separated piece is tried on its own, and a piece that
// still fails is kept as a bare address so that search can find it.
func (m *Message) addressList(h gomail.Header, key string) []Address {
	if !h.Has(key) {
		return []Address{}
	}
	list, err := h.AddressList(key)
	if err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, Address{Name: a.Name, Address: a.Address})
		}
		return out
	}
	out := []Address{}
	v, terr := h.Text(key)
	if terr != nil {
		v = h.Get(key)
	}
	for _, piece := range splitAddressList(v) {
		piece = strings.TrimSpace(piece)
		if piece == "" {
			continue
		}
		if a, err := mail.ParseAddress(piece); err == nil {
			out = append(out, Address{Name: a.Name, Address: a.Address})
			continue
		}
		out = append(out, salvageAddress(piece))
	}
	m.Problems = append(m.Problems, fmt.Sprintf("%s: %v", strings.ToLower(key), err))
	return out
}

// splitAddressList splits a malformed address list at commas and
// semicolons (a group's end, or a common typo) outside quotes, comments and
// angle brackets: `"Last, First" <a@x>; b@y` is two addresses.
func splitAddressList(v string) []string {
	var out []string
	start, depth := 0, 0
	quoted, angle := false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && (quoted || depth > 0):
			i++ // an escaped character
		case c == '"' && depth == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case (c == ',' || c == ';') && !angle:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// salvageAddress reads what it can from an address Go's parser refused:
// comments (which RFC 5322 allows almost anywhere) are dropped, the last
// one kept as the name of the old "addr (Name)" form; the address is the
// part in angle brackets, else the word with an '@', else the whole piece.
func salvageAddress(piece string) Address {
	var rest strings.Builder
	var comment, cur strings.Builder
	depth := 0
	for _, r := range piece {
		switch {
		case r == '(':
			if depth == 0 {
				cur.Reset()
			} else {
				cur.WriteRune(r)
			}
			depth++
		case r == ')' && depth > 0:
			depth--
			if depth == 0 {
				comment.Reset()
				comment.WriteString(cur.String())
				rest.WriteByte(' ')
			} else {
				cur.WriteRune(r)
			}
		case depth > 0:
			cur.WriteRune(r)
		default:
			rest.WriteRune(r)
		}
	}
	text := strings.TrimSpace(rest.String())
	name := strings.TrimSpace(comment.String())
	if a, err := mail.ParseAddress(text); err == nil {
		if a.Name != "" {
			name = a.Name
		}
		return Address{Name: name, Address: a.Address}
	}
	if l := strings.LastIndexByte(text, '<'); l >= 0 {
		if r := strings.IndexByte(text[l+1:], '>'); r >= 0 {
			if n := strings.Trim(strings.TrimSpace(strings.TrimRight(text[:l], "<")), `"`); n != "" {
				name = n
			}
			return Address{Name: name, Address: strings.TrimSpace(text[l+1 : l+1+r])}
		}
	}
	words := strings.Fields(text)
	for i := len(words) - 1; i >= 0; i-- {
		if strings.Contains(words[i], "@") {
			return Address{Name: name, Address: strings.Trim(words[i], `<>;:,"'`)}
		}
	}
	return Address{Name: name, Address: strings.Trim(text, "<>")}
}

type walker struct {
	m     *Message
	parts int
	size  int // of the raw message: a bound on a single part's body
}

func (w *walker) walk(e *message.Entity, path string, depth int) {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		if w.parts == maxParts+1 || depth == maxDepth+1 {
			w.m.Problems = append(w.m.Problems, "too many or too deeply nested parts")
		}
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for i := 1; ; i++ {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && !message.IsUnknownCharset(err) {
				w.m.Problems = append(w.m.Problems, fmt.Sprintf("part %s: %v", join(path, i), err))
				return
			}
			if err != nil {
				w.m.Problems = append(w.m.Problems, fmt.Sprintf("part %s: %v", join(path, i), err))
			}
			w.walk(p, join(path, i), depth+1)
		}
	}
	id := path
	if id == "" {
		id = "1"
	}
	ct, ctParams, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	disp, dispParams, _ := e.Header.ContentDisposition()
	filename := dispParams["filename"]
	if filename == "" {
		filename = ctParams["name"]
	}
	if filename != "" {
		if dec, err := new(mime.WordDecoder).DecodeHeader(filename); err == nil {
			filename = dec
		}
	}
	cid := strings.Trim(strings.TrimSpace(e.Header.Get("Content-Id")), "<>")
	// Read into a string builder, sized for the body of a single-part
	// message: the text becomes a string without another copy, and a large
	// body is not regrown on the way (ingest parses every message).
	var sb strings.Builder
	if depth == 0 {
		sb.Grow(min(w.size, maxPartBytes))
	}
	// io.Copy would take a 32 KiB buffer even for a 1 KB body.
	_, err = io.CopyBuffer(&sb, io.LimitReader(e.Body, maxPartBytes), make([]byte, min(32<<10, max(512, w.size))))
	if err != nil {
		w.m.Problems = append(w.m.Problems, fmt.Sprintf("part %s body: %v", id, err))
	}
	body := sb.String()
	isAttachment := disp == "attachment" || filename != ""
	switch {
	case ct == "text/plain" && !isAttachment && w.m.Text == "":
		w.m.Text = toUTF8(body)
		return
	case ct == "text/html" && !isAttachment && w.m.HTML == "":
		w.m.HTML = toUTF8(body)
		return
	case strings.HasPrefix(ct, "text/") && !isAttachment && cid == "":
		// A further text part of an alternative or mixed body: it is body
		// text, not something to download.
		return
	}
	inline := disp == "inline" || (disp == "" && cid != "")
	w.m.Attachments = append(w.m.Attachments, Part{
		ID: id, Filename: filename, ContentType: ct, Size: len(body), ContentID: cid, Inline: inline,
	})
	if !inline || filename != "" {
		w.m.HasAttachments = true
	}
}

// PartBody returns the decoded body and header of the part with the given
// dotted id, as numbered by Parse.
func PartBody(raw []byte, id string) (body []byte, contentType, filename string, err error) {
	e, err := readEntity(raw)
	if e == nil {
		return nil, "", "", fmt.Errorf("read message: %w", err)
	}
	steps := strings.Split(id, ".")
	for i, s := range steps {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, "", "", ErrNoPart
		}
		mr := e.MultipartReader()
		if mr == nil {
			if i == len(steps)-1 && n == 1 && i == 0 {
				break
			}
			return nil, "", "", ErrNoPart
		}
		var p *message.Entity
		for k := 1; k <= n; k++ {
			p, err = mr.NextPart()
			if err != nil && !message.IsUnknownCharset(err) {
				return nil, "", "", ErrNoPart
			}
		}
		e = p
	}
	if e.MultipartReader() != nil {
		return nil, "", "", ErrNoPart
	}
	ct, params, _ := e.Header.ContentType()
	if ct == "" {
		ct = "text/plain"
	}
	_, dparams, _ := e.Header.ContentDisposition()
	filename = dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	// A truncated part yields what it has, as Parse counted it.
	body, _ = io.ReadAll(io.LimitReader(e.Body, maxPartBytes))
	if strings.HasPrefix(ct, "text/") {
		// The body was converted to UTF-8 while reading.
		ct += "; charset=utf-8"
	}
	return body, ct, filename, nil
}

// readEntity reads the top entity leniently. Real mail starts with mbox
// "From " lines or carries header lines that are not fields; rather than
// refuse such a message, the header is cut at the first line that is not a
// field and the rest is read as body.
func readEntity(raw []byte) (*message.Entity, error) {
	e, err := message.Read(bytes.NewReader(raw))
	if e != nil || err == nil {
		return e, err
	}
	fixed := salvageHeader(raw)
	e2, err2 := message.Read(bytes.NewReader(fixed))
	if e2 == nil {
		return nil, err
	}
	if err2 == nil {
		err2 = fmt.Errorf("header repaired: %w", err)
	}
	return e2, err2
}

func salvageHeader(raw []byte) []byte {
	rest := raw
	if bytes.HasPrefix(rest, []byte("From ")) {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		}
	}
	var hdr bytes.Buffer
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i+1]
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			rest = rest[len(line):]
			break
		}
		folded := trimmed[0] == ' ' || trimmed[0] == '\t'
		if !folded && !isField(trimmed) {
			break
		}
		if !(folded && hdr.Len() == 0) {
			hdr.Write(trimmed)
			hdr.WriteString("\r\n")
		}
		rest = rest[len(line):]
	}
	hdr.WriteString("\r\n")
	hdr.Write(rest)
	return hdr.Bytes()
}

func isField(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	for _, c := range line[:colon] {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// ErrNoPart is returned by PartBody for an id that names no leaf part.
var ErrNoPart = errors.New("mailparse: no such part")

func join(path string, i int) string {
	if path == "" {
		return strconv.Itoa(i)
	}
	return path + "." + strconv.Itoa(i)
}

func toUTF8(b string) string {
	if utf8.ValidString(b) {
		return b
	}
	return strings.ToValidUTF8(b, "\uFFFD")
}

// snippet collapses white space and keeps the first snippetRunes runes,
// reading only as far as it needs to: bodies can be megabytes.
func snippet(s string) string {
	var b strings.Builder
	// Sized for a snippet of ASCII text, so it is built without regrowing
	// (ingest makes one per message).
	b.Grow(min(len(s), snippetRunes+len("…")))
	n := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if n == snippetRunes {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
			if n == snippetRunes {
				b.WriteString("…")
				break
			}
		}
		if r == utf8.RuneError {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// StripHTML returns the visible text of an HTML document, roughly: tags,
// comments, scripts and styles removed, entities decoded, white space
// collapsed. Inline tags (<b>, <a>, <span>…) join the text around them, as
// a browser shows it; other tags separate words.
func StripHTML(h string) string {
	var b strings.Builder
	lower := strings.ToLower(h)
	for i := 0; i < len(h); {
		if h[i] != '<' {
			j := strings.IndexByte(h[i:], '<')
			if j < 0 {
				j = len(h) - i
			}
			b.WriteString(h[i : i+j])
			i += j
			continue
		}
		if strings.HasPrefix(h[i:], "<!--") {
			end := strings.Index(h[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		name := tagName(lower[i+1:])
		if name == "script" || name == "style" {
			if end := strings.Index(lower[i:], "</"+name); end >= 0 {
				i += end
			}
		}
		end := strings.IndexByte(h[i:], '>')
		if end < 0 {
			break
		}
		i += end + 1
		if !isInline(name) {
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
}

// tagName reads the element name at the start of s, the text after '<'
// (a closing tag's '/' skipped), lower-cased as s is.
func tagName(s string) string {
	s = strings.TrimPrefix(s, "/")
	n := 0
	for n < len(s) && (s[n] >= 'a' && s[n] <= 'z' || s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return s[:n]
}

// isInline tells the tags that do not break a word when stripped.
func isInline(tag string) bool {
	switch tag {
	case "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
		"mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr":
		return true
	}
	return false
}

func textprotoKey(k string) string {
	// Canonical form so that "message-id" and "Message-ID" are one key.
	return textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
}
