package imapd

import (
	"testing"
)

// FuzzSurelyLacks: the shortcut that skips parsing a message in TEXT and
// BODY search never rules out a message the full search would match.
func FuzzSurelyLacks(f *testing.F) {
	for _, s := range [][2]string{
		{"Subject: Hello World\r\n\r\nbody text\r\n", "world"},
		{"Subject: =?UTF-8?Q?J=C3=BCrgen?=\r\n\r\nx\r\n", "jürgen"},
		{"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n", "hello"},
		{"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nM\xfcller\r\n", "müller"},
		{"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nso=\r\nft\r\n", "soft"},
		{"Subject: folded\r\n line\r\n\r\nb\r\n", "folded"},
		{"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNEEDLE\r\n--b--\r\n", "needle"},
		{"Subject: \xff\xfe\r\n\r\nÄBC\r\n", "äbc"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, pattern string) {
		m := &candidate{raw: []byte(raw), loaded: true}
		if !m.surelyLacks(pattern) {
			return
		}
		for _, headers := range []bool{true, false} {
			ent, _ := m.entity()
			if matchEntity(ent, pattern, headers) {
				t.Fatalf("ruled out, but the search (headers %v) matches %q in %q", headers, pattern, raw)
			}
		}
	})
}
