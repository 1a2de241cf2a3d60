package imapd_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// An IMAP server over a temporary store: captured mail is in the INBOX of
// each recipient's mailbox, and any password logs in.
func ExampleNew() {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{}) // temporary SQLite store
	if err != nil {
		panic(err)
	}
	defer st.Close()
	st.Ingest(ctx, store.Envelope{From: "app@example.com", To: []string{"bob@example.com"}},
		[]byte("Subject: Welcome\r\n\r\nHello Bob\r\n"))

	srv := imapd.New(st, imapd.Options{}, slog.Default())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln) // for IMAPS: srv.Serve(tls.NewListener(ln, cfg))
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	r.ReadString('\n') // greeting
	fmt.Fprint(conn, "a LOGIN bob@example.com anything\r\nb STATUS INBOX (MESSAGES UNSEEN)\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			panic(err)
		}
		if strings.HasPrefix(line, "* STATUS") {
			fmt.Print(line)
		}
		if strings.HasPrefix(line, "b ") {
			break
		}
	}
	// Output:
	// * STATUS INBOX (MESSAGES 1 UNSEEN 1)
}
