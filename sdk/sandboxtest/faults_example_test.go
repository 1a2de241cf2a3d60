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

// A fault rule makes the sandbox refuse one recipient; the session log
// shows what the application was told.
func ExampleWithFault() {
	s, err := sandboxtest.Start(context.Background(),
		sandboxtest.WithFault(sdk.Fault{Stage: "rcpt", To: "*@bounce.test", Reply: "550 5.1.1 No such user"}))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	err = smtp.SendMail(s.SMTPAddr(), nil, "app@shop.test", []string{"ann@bounce.test"}, []byte("Subject: Hi\r\n\r\nHi.\r\n"))
	fmt.Println("send:", err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := s.Client().WaitSession(ctx, sdk.SessionFilter{To: "ann@bounce.test", Ended: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range sess.Lines {
		if l.Fault {
			fmt.Println("fault:", l.Text)
		}
	}
	// Output:
	// send: 550 "5.1.1 No such user"
	// fault: 550 5.1.1 No such user
}

// A rule added while the sandbox runs; the handle's Remove is deferred.
func ExampleFaultHandle_Remove() {
	s, err := sandboxtest.Start(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	h, err := s.Client().AddFault(ctx, sdk.Fault{Stage: "mail", Times: 1, Reply: "451 4.7.1 Try again later"})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Remove()

	send := func() error {
		return smtp.SendMail(s.SMTPAddr(), nil, "app@shop.test", []string{"bob@example.com"}, []byte("Subject: Hi\r\n\r\nHi.\r\n"))
	}
	fmt.Println("first:", send())
	fmt.Println("retry:", send())
	// Output:
	// first: 451 "4.7.1 Try again later"
	// retry: <nil>
}
