package pop3d_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary input to a whole session over a socket: the
// server must answer, end the session when the client hangs up, and never
// panic (a contained panic would still show in the log).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"USER bob@example.com\r\nPASS x\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nQUIT\r\n",
		"USER bob@example.com\r\nPASS x\r\nDELE 1\r\nRSET\r\nDELE 2\r\nLIST 2\r\nQUIT\r\n",
		"AUTH PLAIN\r\nAGJvYkBleGFtcGxlLmNvbQB4\r\nRETR 1\r\nNOOP\r\n",
		"AUTH PLAIN AGJvYkBleGFtcGxlLmNvbQB4\r\nTOP 1 0\r\nQUIT\r\n",
		"CAPA\r\nSTLS\r\nAUTH\r\nUSER\r\nPASS\r\n\r\n\x00\xff\r\n",
		"USER bob@example.com\nPASS\nRETR 1\nRETR 99999\nTOP 1 999999999\n",
		"AUTH PLAIN\r\n*\r\nQUIT",
	} {
		f.Add(s)
	}
	// One server for all inputs: opening a store per input makes the
	// fuzzer crawl (the SQLite engine is instrumented too).
	shared := newTestServer(f)
	f.Fuzz(func(t *testing.T, input string) {
		ts := *shared
		ts.t = t
		for n := len(ts.inbox("bob@example.com")); n < 2; n++ {
			ts.ingest(msgFirst, "bob@example.com")
			ts.ingest("Subject: bare\n\n.x\nno end", "bob@example.com")
		}
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		go func() {
			io.WriteString(c, input)
			c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, out)
		}
		if !strings.HasPrefix(string(out), "+OK") {
			t.Fatalf("no greeting: %q", out)
		}
		for _, l := range strings.Split(string(out), "\r\n") {
			if strings.Contains(l, "\n") {
				t.Fatalf("bare LF in reply %q", l)
			}
		}
		if logs := ts.logs.String(); strings.Contains(logs, "pop3 panic") {
			t.Fatalf("panic for %q:\n%s", input, logs)
		}
	})
}
