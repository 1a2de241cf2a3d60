package sandboxcontainer_test

import (
	"context"
	"fmt"
	"log"
	"net/smtp"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxcontainer"
)

// Start the image (built from the repository's Dockerfile), send it mail
// from the host and read it back. In a test, call
// testcontainers.CleanupContainer(t, ctr) right after Run instead of the
// deferred TerminateContainer. (Not run here: it needs Docker and the image;
// e2e/ runs the same steps.)
func ExampleRun() {
	ctx := context.Background()
	ctr, err := sandboxcontainer.Run(ctx, "mailsandbox:latest",
		sandboxcontainer.WithMaxMessages(1000),
		sandboxcontainer.WithRelaySmarthost("smtp.internal:25"),
		sandboxcontainer.WithRelayMatch("*@mycompany.example"),
	)
	defer func() {
		if err := testcontainers.TerminateContainer(ctr); err != nil {
			log.Print(err)
		}
	}()
	if err != nil {
		log.Fatal(err)
	}
	smtpAddr, err := ctr.SMTPEndpoint(ctx)
	if err != nil {
		log.Fatal(err)
	}
	msg := "From: app@example.com\r\nTo: bob@example.com\r\nSubject: Welcome\r\n\r\nhi\r\n"
	if err := smtp.SendMail(smtpAddr, nil, "app@example.com", []string{"bob@example.com"}, []byte(msg)); err != nil {
		log.Fatal(err)
	}
	client, err := ctr.Client(ctx)
	if err != nil {
		log.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := client.Wait(wctx, sdk.Filter{To: "bob@example.com", Subject: "Welcome"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Subject)
}
