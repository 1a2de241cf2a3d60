package store

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// searchText decides how a message's body text is kept for search. Most
// captured mail is plain ASCII text sent as is, so its text is a span of the
// raw bytes already stored: keeping only where it lies saves writing the
// body a second time. SQLite's LIKE folds ASCII case, so searching the span
// finds what searching a lower-cased copy would. Anything else — non-ASCII
// text, or text that was decoded (quoted-printable, base64, another
// charset, HTML) — is kept as a lower-cased copy, as before.
func searchText(raw []byte, src string) (text string, off, n int64) {
	if src != "" && isASCII(src) {
		if i := spanOf(raw, src); i >= 0 {
			return "", int64(i), int64(len(src))
		}
	}
	return strings.ToLower(src), -1, 0
}

// spanOf returns where text lies in raw, -1 when it does not. A single-part
// message's text ends the message, so that is tried first.
func spanOf(raw []byte, text string) int {
	t := []byte(text)
	if bytes.HasSuffix(raw, t) {
		return len(raw) - len(t)
	}
	return bytes.Index(raw, t)
}

// isASCII reads eight bytes at a time: bodies can be megabytes.
func isASCII(s string) bool {
	i := 0
	var w [8]byte
	for ; i+8 <= len(s); i += 8 {
		copy(w[:], s[i:i+8])
		if binary.LittleEndian.Uint64(w[:])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
