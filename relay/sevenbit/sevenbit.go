// Package sevenbit rewrites a message so that every body part is 7-bit
// clean, for a destination that does not offer 8BITMIME (RFC 6152): 8-bit
// text parts become quoted-printable, other 8-bit parts base64. Parts that
// are already 7-bit, multipart structure (boundaries, preamble, epilogue)
// and header fields are kept byte for byte. Header fields themselves are
// not changed, except that 8-bit bytes in a part header become RFC 2047
// encoded-words. 8-bit top-level headers need SMTPUTF8; DowngradeHeader
// encodes them for a destination without it.
package sevenbit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// maxDepth bounds nested multiparts and messages.
const maxDepth = 32

// Is8Bit reports whether b has a byte outside 7-bit ASCII, or a NUL.
func Is8Bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == 0 {
			return true
		}
	}
	return false
}

// HeaderIs8Bit reports whether the header section of raw has 8-bit bytes
// (RFC 6532 UTF-8 headers): such mail needs SMTPUTF8.
func HeaderIs8Bit(raw []byte) bool {
	h, _ := split(raw)
	return Is8Bit(h)
}

// Convert returns raw with every 8-bit body part re-encoded. When nothing
// needs converting it returns raw itself. A message without a MIME header
// and with an 8-bit body is treated as text/plain (UTF-8 when valid) and
// given MIME-Version and Content-Type fields.
func Convert(raw []byte) ([]byte, error) {
	if !Is8Bit(raw) {
		return raw, nil
	}
	head, body := split(raw)
	h, err := parseHeader(head)
	if err != nil {
		return nil, fmt.Errorf("sevenbit: read header: %w", err)
	}
	if h.Get("Mime-Version") == "" && h.Get("Content-Type") == "" && Is8Bit(body) {
		nl := newline(head)
		extra := "MIME-Version: 1.0" + nl + "Content-Type: text/plain; charset=utf-8" + nl
		if !utf8Valid(body) {
			extra = "MIME-Version: 1.0" + nl + "Content-Type: text/plain; charset=unknown-8bit" + nl
		}
		head = insertBeforeEnd(head, extra)
		h, _ = parseHeader(head)
	}
	return convertEntity(head, h, body, 0)
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// split separates the header section (with its blank line) from the body.
func split(raw []byte) (head, body []byte) {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return raw, nil
		}
		line := raw[i : i+j+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return raw[:i+j+1], raw[i+j+1:]
		}
		i += j + 1
	}
	return raw, nil
}

func newline(head []byte) string {
	if bytes.Contains(head, []byte("\r\n")) || len(head) == 0 {
		return "\r\n"
	}
	return "\n"
}

// insertBeforeEnd adds fields at the end of a header section, before the
// blank line.
func insertBeforeEnd(head []byte, fields string) []byte {
	trimmed := bytes.TrimRight(head, "\r\n")
	nl := newline(head)
	var b bytes.Buffer
	b.Write(trimmed)
	if len(trimmed) > 0 {
		b.WriteString(nl)
	}
	b.WriteString(fields)
	b.WriteString(nl)
	return b.Bytes()
}

func parseHeader(head []byte) (textproto.MIMEHeader, error) {
	trimmed := bytes.TrimRight(head, "\r\n")
	buf := make([]byte, 0, len(trimmed)+4) // never append into the caller's bytes
	buf = append(append(buf, trimmed...), "\r\n\r\n"...)
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(buf)))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 && len(bytes.TrimSpace(head)) > 0 {
		return h, err
	}
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	return h, nil
}

func convertEntity(head []byte, h textproto.MIMEHeader, body []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("sevenbit: nesting too deep")
	}
	if depth > 0 && Is8Bit(head) {
		// 8-bit bytes in a part's header (a raw UTF-8 file name, say)
		// become RFC 2047 encoded words.
		head = encodeHeader(head)
	}
	if !Is8Bit(body) {
		return append(append([]byte{}, head...), body...), nil
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt, params = "text/plain", nil
		if h.Get("Content-Type") != "" {
			mt = "application/octet-stream"
		}
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		nb, err := convertMultipart(body, params["boundary"], depth)
		if err != nil {
			return nil, err
		}
		return append(append([]byte{}, head...), nb...), nil
	case mt == "message/rfc822" || mt == "message/global":
		if cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary" {
			ih, ib := split(body)
			ihp, err := parseHeader(ih)
			if err == nil && !Is8Bit(ih) {
				inner, err := convertEntity(ih, ihp, ib, depth+1)
				if err != nil {
					return nil, err
				}
				return append(setCTE(head, "7bit"), inner...), nil
			}
		}
	}
	// A leaf: decode what it is, encode 7-bit.
	var data []byte
	switch cte {
	case "quoted-printable":
		data, err = readAllQP(body)
		if err != nil {
			data = body
		}
	case "base64":
		// Already 7-bit by definition; 8-bit bytes here are junk, keep them out.
		return append(append([]byte{}, head...), stripNon7(body)...), nil
	default:
		data = body
	}
	var out bytes.Buffer
	nl := newline(head)
	if strings.HasPrefix(mt, "text/") || mt == "message/delivery-status" {
		out.Write(setCTE(head, "quoted-printable"))
		w := quotedprintable.NewWriter(&out)
		_, _ = w.Write(data)
		_ = w.Close()
		if !bytes.HasSuffix(out.Bytes(), []byte("\n")) && bytes.HasSuffix(body, []byte("\n")) {
			out.WriteString(nl)
		}
	} else {
		out.Write(setCTE(head, "base64"))
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			out.WriteString(enc[:76] + nl)
			enc = enc[76:]
		}
		out.WriteString(enc + nl)
	}
	return out.Bytes(), nil
}

func readAllQP(b []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := out.ReadFrom(quotedprintable.NewReader(bytes.NewReader(b)))
	return out.Bytes(), err
}

func stripNon7(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c < 0x80 && c != 0 {
			out = append(out, c)
		}
	}
	return out
}

// setCTE replaces (or adds) the Content-Transfer-Encoding field of a raw
// header section, keeping every other field as it was.
func setCTE(head []byte, cte string) []byte {
	nl := newline(head)
	lines := splitLines(head)
	var out bytes.Buffer
	skipping := false
	for _, l := range lines {
		t := bytes.TrimRight(l, "\r\n")
		if len(t) == 0 {
			continue // the blank line, added back below
		}
		if skipping && (t[0] == ' ' || t[0] == '\t') {
			continue
		}
		skipping = false
		if i := bytes.IndexByte(t, ':'); i > 0 && strings.EqualFold(strings.TrimSpace(string(t[:i])), "Content-Transfer-Encoding") {
			skipping = true
			continue
		}
		out.Write(l)
		if !bytes.HasSuffix(l, []byte("\n")) {
			out.WriteString(nl)
		}
	}
	out.WriteString("Content-Transfer-Encoding: " + cte + nl + nl)
	return out.Bytes()
}

func isASCIIString(s string) bool { return !Is8Bit([]byte(s)) }

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// convertMultipart converts each part between the boundary delimiters,
// keeping the delimiters, preamble and epilogue as they are.
func convertMultipart(body []byte, boundary string, depth int) ([]byte, error) {
	delim := []byte("--" + boundary)
	lines := splitLines(body)
	var out bytes.Buffer
	var part bytes.Buffer
	inPart, closed := false, false
	flush := func() error {
		// The line break before a delimiter belongs to the delimiter.
		p := part.Bytes()
		var tail []byte
		switch {
		case bytes.HasSuffix(p, []byte("\r\n")):
			p, tail = p[:len(p)-2], []byte("\r\n")
		case bytes.HasSuffix(p, []byte("\n")):
			p, tail = p[:len(p)-1], []byte("\n")
		}
		ph, pb := split(p)
		hh, err := parseHeader(ph)
		if err != nil {
			hh = textproto.MIMEHeader{}
		}
		conv, err := convertEntity(ph, hh, pb, depth+1)
		if err != nil {
			return err
		}
		out.Write(conv)
		out.Write(tail)
		part.Reset()
		return nil
	}
	for _, l := range lines {
		t := bytes.TrimRight(l, " \t\r\n")
		if !closed && bytes.HasPrefix(t, delim) {
			rest := t[len(delim):]
			if len(rest) == 0 || string(rest) == "--" {
				if inPart {
					if err := flush(); err != nil {
						return nil, err
					}
				}
				out.Write(l)
				inPart = string(rest) != "--"
				closed = !inPart
				continue
			}
		}
		if inPart {
			part.Write(l)
		} else {
			out.Write(l) // preamble or epilogue
		}
	}
	if inPart {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

// encodeHeader rewrites every header field that has 8-bit bytes as one
// line whose value is RFC 2047 encoded-words (UTF-8, base64). Quoted
// parameter values keep their quotes around the encoded-words, which mail
// readers decode in file names.
func encodeHeader(head []byte) []byte {
	nl := newline(head)
	var out bytes.Buffer
	var field []byte
	flush := func() {
		if len(field) == 0 {
			return
		}
		f := bytes.TrimRight(field, "\r\n")
		field = nil
		i := bytes.IndexByte(f, ':')
		if !Is8Bit(f) || i < 0 {
			out.Write(f)
			out.WriteString(nl)
			return
		}
		name := string(f[:i])
		value := strings.ReplaceAll(strings.ReplaceAll(string(f[i+1:]), "\r\n", ""), "\n", "")
		value = strings.ToValidUTF8(strings.TrimSpace(value), "\uFFFD")
		var b strings.Builder
		for len(value) > 0 {
			j := strings.IndexFunc(value, func(r rune) bool { return r >= 0x80 })
			if j < 0 {
				b.WriteString(value)
				break
			}
			// Encode from the start of the word holding the 8-bit run to
			// its end, keeping quotes and separators outside.
			start := strings.LastIndexAny(value[:j], " \t\"=;,") + 1
			wordEnd := func(from int) int {
				e := strings.IndexAny(value[from:], " \t\";,")
				if e < 0 {
					return len(value)
				}
				return from + e
			}
			end := wordEnd(j)
			// Whitespace between two encoded-words is dropped by readers
			// (RFC 2047 6.2): a following 8-bit word joins this one.
			for end < len(value) && (value[end] == ' ' || value[end] == '\t') {
				next := end + len(value[end:]) - len(strings.TrimLeft(value[end:], " \t"))
				e := wordEnd(next)
				if next == e || isASCIIString(value[next:e]) {
					break
				}
				end = e
			}
			b.WriteString(value[:start])
			b.WriteString(mime.BEncoding.Encode("utf-8", value[start:end]))
			value = value[end:]
		}
		out.WriteString(name + ": " + b.String() + nl)
	}
	for _, l := range splitLines(head) {
		t := bytes.TrimRight(l, "\r\n")
		switch {
		case len(t) == 0:
			flush()
			out.WriteString(nl)
		case (t[0] == ' ' || t[0] == '\t') && field != nil:
			field = append(field, l...)
		default:
			flush()
			field = append([]byte{}, l...)
		}
	}
	flush()
	return out.Bytes()
}
