package smtpd_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestShutdownEndsIdleSessionsAndFinishesTransactions: Shutdown tells a
// client waiting between commands 421 and closes it at once, lets a client
// in the middle of DATA finish (250, stored) before its 421, and returns
// without waiting for its deadline (a generous one: it is not a timing
// test, the error says whether Shutdown waited it out).
func TestShutdownEndsIdleSessionsAndFinishesTransactions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	idle := dialRaw(t, ts.addr)
	idle.cmd("EHLO idle", "250")
	busy := dialRaw(t, ts.addr)
	busy.cmd("EHLO busy", "250")
	busy.cmd("MAIL FROM:<a@x.test>", "250")
	busy.cmd("RCPT TO:<b@x.test>", "250")
	busy.cmd("DATA", "354")
	fmt.Fprintf(busy.c, "Subject: in flight\r\n\r\nfirst half\r\n")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	idle.expect("421")
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle session after 421: %v, want EOF", err)
	}
	fmt.Fprintf(busy.c, "second half\r\n.\r\n")
	busy.expect("250")
	busy.expect("421")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v (it waited for its deadline)", err)
	}
	if _, n, err := ts.st.Search(context.Background(), store.Query{Subject: "in flight"}); err != nil || n != 1 {
		t.Fatalf("message in flight at shutdown: stored %d, %v", n, err)
	}
}

// TestShutdownEndsConnectionsBeforeEHLO: a client that connected and said
// nothing yet (go-smtp makes the session only at EHLO) gets 421 and is
// closed too; Shutdown does not wait for it (before, it held Shutdown, and
// the binary's SIGTERM, until its deadline). With and without the session
// log, whose wrapper sits between go-smtp and the connection.
func TestShutdownEndsConnectionsBeforeEHLO(t *testing.T) {
	t.Parallel()
	for _, withLog := range []bool{false, true} {
		t.Run(fmt.Sprintf("sessionlog=%v", withLog), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, func(o *smtpd.Options) {
				if withLog {
					o.SessionLog = smtplog.New(smtplog.Options{})
				}
			})
			quiet := dialRaw(t, ts.addr) // read the greeting, sent nothing
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				done <- ts.srv.Shutdown(ctx)
			}()
			quiet.expect("421")
			if _, err := quiet.br.ReadByte(); err != io.EOF {
				t.Fatalf("connection after 421: %v, want EOF", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Shutdown: %v (it waited for its deadline)", err)
			}
		})
	}
}
