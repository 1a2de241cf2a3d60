package imapd

import (
	"testing"
)

// FuzzParseAddrList: any header value parses without panic, group
// markers come in start/end pairs, and every address has a mailbox and a
// host (a NIL host would read as a group start).
func FuzzParseAddrList(f *testing.F) {
	for _, s := range []string{
		"<user (comment)@ (comment) example.org>",
		"team: a@x, b@y;, other: ;",
		"<@route,@r2:user@domain>",
		`"Doe, John" <john@x>, =?UTF-8?Q?J=C3=BCrgen?= <j@y> (c (nested))`,
		"undisclosed-recipients:;",
		"a@b@c, <<x>>, ;;, :, \"unterminated",
		"(((", "\\", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		depth := 0
		for _, a := range parseAddrList(s) {
			switch {
			case a.end:
				depth--
			case a.group != "":
				depth++
			default:
				if a.local == "" || a.domain == "" {
					t.Fatalf("%q: address %+v", s, a)
				}
			}
			if depth < 0 || depth > 1 {
				t.Fatalf("%q: groups unbalanced", s)
			}
		}
		if depth != 0 {
			t.Fatalf("%q: group not closed", s)
		}
		_ = matchAddresses([]string{s}, "x")
	})
}
