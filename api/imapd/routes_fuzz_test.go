package imapd

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// FuzzRouteRestore: an address line as the library writes it, with the
// route carried in the name, comes out as if the library could write the
// route; and restore of any bytes neither panics nor touches text without
// the server's mark.
func FuzzRouteRestore(f *testing.F) {
	f.Add("@a.test,@b.test", "Some \"One\"", "x", "y.test", "other text")
	f.Add("@r", "", "u", "h", `("RT" NIL `)
	f.Add("", "name", "u", "h", "")
	f.Fuzz(func(t *testing.T, route, name, mailbox, host, noise string) {
		mark := newRouteMark()
		if strings.Contains(noise, string(mark)) {
			return
		}
		if got := string(mark.restore([]byte(noise))); got != noise {
			t.Fatalf("unmarked text changed: %q -> %q", noise, got)
		}
		if strings.ContainsAny(route+name, "\x00\r\n") {
			return // never in a parsed address
		}
		a := imap.Address{Name: mark.carry(route, name), Mailbox: mailbox, Host: host}
		// What the library's writeAddressList writes for it.
		lib := "(" + imapNString(encodeName(a.Name)) + " NIL " + imapNString(a.Mailbox) + " " + imapNString(a.Host) + ")"
		want := "(" + imapNString(encodeName(name)) + " " + imapNString(route) + " " + imapNString(mailbox) + " " + imapNString(host) + ")"
		if route == "" || len(route)+len(name) > maxRouted {
			want = "(" + imapNString(encodeName(name)) + " NIL " + imapNString(mailbox) + " " + imapNString(host) + ")"
		}
		if got := string(mark.restore([]byte(noise + lib + noise))); got != noise+want+noise {
			t.Fatalf("restore\n%q\nwant\n%q", got, noise+want+noise)
		}
	})
}
