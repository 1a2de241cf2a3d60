package sdk_test

import (
	"context"
	"fmt"

	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// A test asserts how its mail will render: here, that Outlook on Windows
// does not do flexbox, and which bulk-sender rules the message misses.
func ExampleMessage_HTMLCheck() {
	s, err := sandboxtest.Start(context.Background())
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := s.Client()
	id, err := c.SendRaw(ctx, []byte("From: news@example.com\r\nTo: reader@example.org\r\nSubject: Hello\r\n"+
		"Content-Type: text/html\r\n\r\n<div style=\"display:flex\">Hi</div>\r\n"))
	if err != nil {
		panic(err)
	}
	m, err := c.Get(ctx, id)
	if err != nil {
		panic(err)
	}
	h, err := m.HTMLCheck(ctx)
	if err != nil {
		panic(err)
	}
	for _, cl := range h.Finding("css-display-flex").Clients {
		if cl.Family == "outlook" && cl.Platform == "windows" {
			fmt.Println(cl.FamilyName, cl.PlatformName, cl.Support)
		}
	}
	b, err := m.BulkCheck(ctx)
	if err != nil {
		panic(err)
	}
	for _, r := range b.Rules {
		if !r.Pass {
			fmt.Println("fails:", r.ID)
		}
	}
	// Output:
	// Outlook Windows no
	// fails: list-unsubscribe
	// fails: list-unsubscribe-https
	// fails: list-unsubscribe-post
	// fails: one-click-dkim
	// fails: plain-text
}
