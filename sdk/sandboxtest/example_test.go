package sandboxtest_test

import (
	"context"
	"fmt"
	"log"
	"net/smtp"
	"time"

	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// An application sends mail over SMTP; the test waits for it through the
// SDK and pulls the link and code out of it. In a test, use
// sandboxtest.New(t) instead of Start: it closes itself with the test.
func Example() {
	s, err := sandboxtest.Start(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// The application under test: any SMTP client will do.
	msg := "From: App <noreply@app.example>\r\n" +
		"To: bob@example.com\r\n" +
		"Subject: Welcome, Bob\r\n" +
		"\r\n" +
		"Confirm your address: https://app.example/confirm?token=t0k3n\r\n" +
		"Your code is 482913.\r\n"
	if err := smtp.SendMail(s.SMTPAddr(), nil, "noreply@app.example", []string{"bob@example.com"}, []byte(msg)); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Client().Wait(ctx, sdk.Filter{To: "bob@example.com", Subject: "Welcome"})
	if err != nil {
		log.Fatal(err)
	}
	link, err := m.FindLink("/confirm")
	if err != nil {
		log.Fatal(err)
	}
	code, err := m.ExtractCode(`code is (\d{6})`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Subject)
	fmt.Println(link)
	fmt.Println(code)
	// Output:
	// Welcome, Bob
	// https://app.example/confirm?token=t0k3n
	// 482913
}

// WithTLS gives the sandbox a fresh certificate; TLSConfig trusts it, so a
// client can upgrade with STARTTLS and verify the server.
func ExampleWithTLS() {
	s, err := sandboxtest.Start(context.Background(), sandboxtest.WithTLS())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	c, err := smtp.Dial(s.SMTPAddr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		log.Fatal("no STARTTLS")
	}
	if err := c.StartTLS(s.TLSConfig()); err != nil {
		log.Fatal(err)
	}
	state, _ := c.TLSConnectionState()
	fmt.Println("TLS:", state.HandshakeComplete)
	// Output: TLS: true
}
