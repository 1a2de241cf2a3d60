package smtpd_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// FuzzSMTPSession feeds arbitrary client bytes to a real server over a
// loopback connection. After the bytes (and a trailer that ends any DATA
// and quits) the client half-closes its side; the server must then close
// the connection within a few seconds (no hang), never panic, and the
// store must hold exactly one new, readable message per "250 2.0.0 Ok:
// queued as <ID>" reply the client saw.
//
// Run: go test -run '^$' -fuzz '^FuzzSMTPSession$' -fuzztime 10m ./capture/smtpd/
func FuzzSMTPSession(f *testing.F) {
	for _, s := range []string{
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
		"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<B@Example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n..dot\r\n.\r\nRSET\r\n",
		"EHLO c\r\nAUTH PLAIN AGJvYgB4\r\nMAIL FROM:<a@x> SIZE=10 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<zoë@例え.jp>\r\nDATA\r\n\xff\xfe\r\n.\r\n",
		"EHLO c\r\nAUTH LOGIN\r\nYm9i\r\neA==\r\nMAIL FROM:<a@x>\r\n",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\n",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 3 LAST\r\nabc",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<>\r\nRCPT TO:<\x00>\r\nDATA\r\n",
		"EHLO c\r\nSTARTTLS\r\nVRFY x\r\nEXPN y\r\nHELP\r\nNOOP\r\nXYZZY\r\n",
		"EHLO " + strings.Repeat("a", 3000) + "\r\n",
		"MAIL FROM:<a@x>\r\nDATA\r\n\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\nDATA\r\n",
		"\r\n\r\n\n\x00\xff",
	} {
		f.Add([]byte(s))
	}
	ts := newTestServer(f, func(o *smtpd.Options) {
		o.ReadTimeout = 3 * time.Second
		o.WriteTimeout = 3 * time.Second
		o.MaxMessageBytes = 1 << 20
		o.MaxLineBytes = 2048
		o.MaxRecipients = 20
	})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, in []byte) {
		queued, after := fuzzSession(t, ts, in)
		msgs, _, err := ts.st.Search(ctx, store.Query{Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs[:min(queued, len(msgs))] {
			if len(m.Mailboxes) == 0 {
				t.Fatalf("message %s acknowledged but in no mailbox", m.ID)
			}
			if _, err := ts.st.Raw(ctx, m.ID); err != nil {
				t.Fatalf("message %s acknowledged but raw unreadable: %v", m.ID, err)
			}
		}
		if after > 500 {
			if err := ts.st.DeleteAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// fuzzSession sends in as one client's whole input (then an end of data
// and QUIT, if the server still reads), reads every reply until the server
// closes, and checks the store grew by exactly the messages acknowledged.
// It returns that count and the store's size after.
func fuzzSession(t *testing.T, ts *testServer, in []byte) (queued, after int) {
	t.Helper()
	ctx := context.Background()
	_, before, err := ts.st.Search(ctx, store.Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	replies := make(chan []string, 1)
	go func() {
		var lines []string
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				lines = append(lines, strings.TrimRight(line, "\r\n"))
			}
			if err != nil {
				replies <- lines
				return
			}
		}
	}()
	// A write error means the server closed early (e.g. a too long
	// line); the reader still collects what it said.
	if _, err := c.Write(in); err == nil {
		io.WriteString(c, "\r\n.\r\nQUIT\r\n")
	}
	c.(*net.TCPConn).CloseWrite()
	var lines []string
	select {
	case lines = <-replies:
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not close the connection after the client's EOF")
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "250 2.0.0 Ok: queued as ") {
			queued++
		}
	}
	_, after, err = ts.st.Search(ctx, store.Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if after-before != queued {
		t.Fatalf("store grew by %d messages, client saw %d acknowledged\nreplies: %q", after-before, queued, lines)
	}
	return queued, after
}
