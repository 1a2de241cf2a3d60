package sendmail

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
)

// errTooBig is reading past the size limit: the message is refused whole.
var errTooBig = errors.New("message too big")

// readMessage reads the message from r with CRLF line ends. Without -i a
// line holding only "." ends it, as in Postfix; a leading mbox "From "
// line is dropped. More than max bytes (0: no limit) is errTooBig.
func readMessage(r io.Reader, ignoreDots bool, max int64) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out bytes.Buffer
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: keep it whole, a piece at a time.
			out.Write(line)
			if max > 0 && int64(out.Len()) > max {
				return nil, errTooBig
			}
			continue
		}
		if len(line) > 0 {
			body := bytes.TrimRight(line, "\r\n")
			switch {
			case first && bytes.HasPrefix(line, []byte("From ")):
				// mbox separator, not a header field
			case !ignoreDots && string(body) == "." && len(body) < len(line):
				return out.Bytes(), nil
			default:
				out.Write(body)
				if len(body) < len(line) || err == nil {
					out.WriteString("\r\n")
				}
			}
			first = false
			if max > 0 && int64(out.Len()) > max {
				return nil, errTooBig
			}
		}
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// header is the message's header block, split into fields; end is where
// the body starts in raw; blank says whether an empty line ended it (else
// the body began with a line that is not a field, or there is none).
type header struct {
	fields []field
	end    int
	blank  bool
}

type field struct {
	name string // as written
	raw  string // the whole field with continuation lines and CRLFs
}

func (f field) value() string {
	_, v, _ := strings.Cut(f.raw, ":")
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", ""), "\t", " "))
}

// splitHeader finds the header fields at the start of raw (CRLF lines).
func splitHeader(raw []byte) header {
	var h header
	pos := 0
	for pos < len(raw) {
		nl := bytes.Index(raw[pos:], []byte("\r\n"))
		lineEnd := len(raw)
		if nl >= 0 {
			lineEnd = pos + nl + 2
		}
		line := raw[pos:lineEnd]
		if nl == 0 {
			h.end, h.blank = lineEnd, true
			return h
		}
		if (line[0] == ' ' || line[0] == '\t') && len(h.fields) > 0 {
			h.fields[len(h.fields)-1].raw += string(line)
			pos = lineEnd
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !fieldName(name) {
			h.end = pos
			return h
		}
		h.fields = append(h.fields, field{name: string(name), raw: string(line)})
		pos = lineEnd
	}
	h.end = len(raw)
	return h
}

// fieldName: printable ASCII without spaces or colon (RFC 5322 ftext).
func fieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

func (h header) has(name string) bool {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

func (h header) values(name string) []string {
	var out []string
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value())
		}
	}
	return out
}

// resent reports whether the message is being resent: then -t reads
// Resent-To/Cc/Bcc instead, as Postfix does.
func (h header) resent() bool {
	for _, f := range h.fields {
		if len(f.name) > 7 && strings.EqualFold(f.name[:7], "Resent-") {
			return true
		}
	}
	return false
}

// extractRecipients is -t: the addresses in To, Cc and Bcc (or their
// Resent- forms). Groups and display names are allowed; an address that
// does not parse is an error naming the field.
func extractRecipients(h header) ([]string, error) {
	prefix := ""
	if h.resent() {
		prefix = "Resent-"
	}
	var out []string
	for _, name := range []string{"To", "Cc", "Bcc"} {
		for _, v := range h.values(prefix + name) {
			if strings.TrimSpace(strings.TrimRight(strings.TrimSpace(v), ";:")) == "" {
				continue
			}
			list, err := parseAddressList(v)
			if err != nil {
				return nil, fmt.Errorf("-t: cannot read the %s%s field %q: %v", prefix, name, clip(v), err)
			}
			out = append(out, list...)
		}
	}
	return out, nil
}

// parseAddressList reads addresses, groups included
// ("undisclosed-recipients:;" has none).
func parseAddressList(v string) ([]string, error) {
	var out []string
	p := mail.AddressParser{}
	list, err := p.ParseList(v)
	if err != nil {
		// A bare group with no members is not an error.
		if g, rest, ok := strings.Cut(v, ":"); ok && !strings.ContainsAny(g, "<@\"") {
			rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), ";"))
			if rest == "" {
				return nil, nil
			}
			return parseAddressList(rest)
		}
		return nil, err
	}
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// fixup is what Postfix's cleanup does to a submitted message: with -t,
// Bcc fields go; a missing Message-Id, Date and From are added, in those
// forms:
//
//	Message-Id: <20261205060102.3F70BD006C@host.example>
//	Date: Sat,  5 Dec 2026 06:01:02 +0000 (UTC)
//	From: Full Name <sender@host>
type fixup struct {
	now      time.Time
	hostname string
	sender   string // envelope sender; "" for the null sender
	fullName string
	dropBcc  bool
}

func (fx fixup) apply(raw []byte, h header) []byte {
	var out bytes.Buffer
	out.Grow(len(raw) + 200)
	for _, f := range h.fields {
		if fx.dropBcc && (strings.EqualFold(f.name, "Bcc") || strings.EqualFold(f.name, "Resent-Bcc")) {
			continue
		}
		out.WriteString(f.raw)
		if !strings.HasSuffix(f.raw, "\r\n") {
			out.WriteString("\r\n")
		}
	}
	if !h.has("Message-Id") {
		fmt.Fprintf(&out, "Message-Id: <%s.%s@%s>\r\n", fx.now.Format("20060102150405"), queueID(), fx.hostname)
	}
	if !h.has("Date") {
		out.WriteString("Date: " + fx.now.Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)") + "\r\n")
	}
	if !h.has("From") && fx.sender != "" {
		if fx.fullName == "" {
			out.WriteString("From: " + fx.sender + "\r\n")
		} else {
			out.WriteString("From: " + phrase(fx.fullName) + " <" + fx.sender + ">\r\n")
		}
	}
	if h.blank {
		out.WriteString("\r\n")
		out.Write(raw[h.end:])
	} else if h.end < len(raw) {
		// The body began without the empty line: add it, so the first
		// body line is not read as part of the header.
		out.WriteString("\r\n")
		out.Write(raw[h.end:])
	}
	return out.Bytes()
}

// phrase writes a display name as Postfix does: bare when it is words of
// atom characters, quoted when it has specials, RFC 2047 when not ASCII.
func phrase(name string) string {
	name = strings.Join(strings.Fields(name), " ")
	if !ascii(name) {
		return mime.QEncoding.Encode("utf-8", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == ' ' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
		}
	}
	return name
}

// queueID looks like a Postfix short queue ID: ten upper-case hex digits.
func queueID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
