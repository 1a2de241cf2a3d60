package sevenbit

import (
	"bytes"
	"net/mail"
	"strings"
)

// addressFields hold mailboxes (RFC 5322 3.6.2, 3.6.3, 3.6.6).
var addressFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
	"resent-from": true, "resent-sender": true, "resent-to": true, "resent-cc": true, "resent-bcc": true,
	"disposition-notification-to": true,
}

// DowngradeHeader rewrites the 8-bit fields of raw's top-level header for a
// destination without SMTPUTF8, which must not get RFC 6532 UTF-8 header
// fields: address fields are written again with RFC 2047 display names,
// other fields get encoded-words as part headers do (Convert). The body is
// left alone. ok is false when an address field holds a non-ASCII mailbox,
// which no encoding can carry (RFC 6531 leaves bouncing it).
func DowngradeHeader(raw []byte) (out []byte, ok bool) {
	head, body := split(raw)
	if !Is8Bit(head) {
		return raw, true
	}
	nl := newline(head)
	var b bytes.Buffer
	for _, f := range fields(head) {
		t := bytes.TrimRight(f, "\r\n")
		i := bytes.IndexByte(t, ':')
		if !Is8Bit(t) || i < 0 {
			b.Write(f)
			continue
		}
		name := strings.TrimSpace(string(t[:i]))
		if !addressFields[strings.ToLower(name)] {
			b.Write(encodeHeader(f))
			continue
		}
		value := strings.ReplaceAll(strings.ReplaceAll(string(t[i+1:]), "\r\n", ""), "\n", "")
		list, err := mail.ParseAddressList(value)
		if err != nil || strings.Contains(value, ":") {
			// Not parsable (stray bytes), or a group, whose name net/mail
			// drops: encode words, unless an 8-bit word may be part of an
			// address.
			for _, w := range strings.FieldsFunc(value, func(r rune) bool { return strings.ContainsRune(" \t,;\"", r) }) {
				if Is8Bit([]byte(w)) && strings.ContainsAny(w, "@<>") {
					return nil, false
				}
			}
			b.Write(encodeHeader(f))
			continue
		}
		parts := make([]string, len(list))
		for k, a := range list {
			if Is8Bit([]byte(a.Address)) {
				return nil, false
			}
			parts[k] = a.String()
		}
		b.WriteString(name + ": " + strings.Join(parts, ","+nl+" ") + nl)
	}
	return append(b.Bytes(), body...), true
}

// fields splits a header section into its fields, each with its
// continuation lines and line ends; the blank line ending the section is
// one more element.
func fields(head []byte) [][]byte {
	var out [][]byte
	for _, l := range splitLines(head) {
		if len(out) > 0 && (l[0] == ' ' || l[0] == '\t') {
			out[len(out)-1] = append(out[len(out)-1], l...)
			continue
		}
		out = append(out, append([]byte{}, l...))
	}
	return out
}
