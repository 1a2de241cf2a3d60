package imapd_test

import (
	"strings"
	"testing"
)

// TestSubscriptionsAreNames: subscriptions are a list of names of their
// own (RFC 3501 6.3.6, RFC 5258), answered as Dovecot answers.
func TestSubscriptionsAreNames(t *testing.T) {
	ts := newTestServer(t)
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("CREATE Foo/Bar")
	if u := c.ok(`LSUB "" "Foo*"`); len(u) != 0 {
		t.Fatalf("CREATE subscribed: %q", u)
	}
	c.ok("SUBSCRIBE Foo/Bar")
	c.ok("SUBSCRIBE Ghost/Kid") // a name without a folder may be subscribed
	checks := []struct{ cmd, want string }{
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" "Foo%"`, `* LIST (\HasChildren) "/" "Foo" (CHILDINFO ("SUBSCRIBED"))`},
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" "Foo*"`, `* LIST (\HasNoChildren \Subscribed) "/" "Foo/Bar"`},
		{`LSUB "" "Foo%"`, `* LSUB (\Noselect) "/" "Foo"`},
		{`LSUB "" "Foo*"`, `* LSUB () "/" "Foo/Bar"`},
		{`LIST (SUBSCRIBED) "" "Ghost/*"`, `* LIST (\NonExistent \Subscribed) "/" "Ghost/Kid"`},
		{`LIST "" "Ghost*"`, ``},
	}
	for _, ch := range checks {
		if u := c.ok("%s", ch.cmd); strings.Join(u, "|") != ch.want {
			t.Errorf("%s: got %q, want %q", ch.cmd, u, ch.want)
		}
	}
	// DELETE keeps the subscription; the name is then \NonExistent.
	c.ok("DELETE Foo/Bar")
	if u := c.ok(`LIST (SUBSCRIBED) "" "Foo*"`); strings.Join(u, "|") != `* LIST (\NonExistent \Subscribed) "/" "Foo/Bar"` {
		t.Errorf("after DELETE: %q", u)
	}
	c.ok("UNSUBSCRIBE Foo/Bar")
	c.ok("UNSUBSCRIBE Foo/Bar") // not subscribed: still fine
	if u := c.ok(`LSUB "" "*"`); strings.Join(u, "|") != `* LSUB () "/" INBOX|* LSUB () "/" "Drafts"|* LSUB () "/" "Ghost/Kid"|* LSUB () "/" "Sent"|* LSUB () "/" "Trash"` {
		t.Errorf("LSUB at the end: %q", u)
	}
}
