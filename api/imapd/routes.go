package imapd

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"mime"
	"strings"
)

// Source routes in ENVELOPE. An address of ENVELOPE is (name adl mailbox
// host), adl being an obsolete source route ("@a,@b" of
// "<@a,@b:user@host>"), which Dovecot returns. The library's imap.Address
// has no field for it and always writes NIL there, and it writes every
// field as an escaped string, so nothing put in an Address reaches the
// client as written. The route is therefore carried through the library
// inside the name field, marked with a random per-server token no sender
// can know, and put in place on the way out (where replyConn and the TLS
// relay already rewrite what the library writes): the library writes
//
//	("<mark><hex route>g<hex name>" NIL "user" "host")
//
// and the client gets
//
//	("name" "@a,@b" "user" "host")    or    (NIL "@a,@b" "user" "host").
//
// The marked field holds only letters and digits, so the library writes it
// as a plain quoted string in one piece, on one line.
type routeMark string

// maxRouted bounds route plus name that are carried; longer ones (no real
// mail) lose the route, so a marked field stays far under the length at
// which output is cut without a line end (see replyConn and the relay).
const maxRouted = 512

// newRouteMark makes a fresh mark; "" (routes dropped) if there is no
// randomness to be had.
func newRouteMark() routeMark {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return ""
	}
	return routeMark("RT" + hex.EncodeToString(b) + "R")
}

// carry returns the name field for an address with a route.
func (m routeMark) carry(route, name string) string {
	if m == "" || route == "" || len(route)+len(name) > maxRouted {
		return name
	}
	return string(m) + hex.EncodeToString([]byte(route)) + "g" + hex.EncodeToString([]byte(name))
}

// restore puts every carried route of p in place. p holds whole lines.
func (m routeMark) restore(p []byte) []byte {
	if m == "" {
		return p
	}
	open := []byte(`("` + string(m))
	if !bytes.Contains(p, open) {
		return p
	}
	var out []byte
	for {
		i := bytes.Index(p, open)
		if i < 0 {
			return append(out, p...)
		}
		rest := p[i+len(open):]
		end := bytes.Index(rest, []byte(`" NIL `))
		var route, name []byte
		ok := end >= 0 && end <= 4*maxRouted+1
		if ok {
			r, n, found := bytes.Cut(rest[:end], []byte("g"))
			var err1, err2 error
			route, err1 = hex.DecodeString(string(r))
			name, err2 = hex.DecodeString(string(n))
			ok = found && err1 == nil && err2 == nil
		}
		if !ok { // not ours after all: leave it
			out = append(out, p[:i+len(open)]...)
			p = rest
			continue
		}
		out = append(out, p[:i]...)
		out = append(out, '(')
		out = append(out, imapNString(encodeName(string(name)))...)
		out = append(out, ' ')
		out = append(out, imapNString(string(route))...)
		out = append(out, ' ')
		p = rest[end+len(`" NIL `):]
	}
}

// encodeName is a display name as the library writes it (RFC 2047 Q).
func encodeName(name string) string { return mime.QEncoding.Encode("utf-8", name) }

// imapNString writes s as the library would an nstring: NIL when empty,
// else quoted (names are Q-encoded, routes are domain names: no CR, LF or
// NUL; any such byte is dropped).
func imapNString(s string) string {
	if s == "" {
		return "NIL"
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0, '\r', '\n':
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
