package smtpd_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
)

// dataPair is a server with the DATA fast path and one reading every body
// with go-smtp's own reader, on one store.
type dataPair struct {
	fast, slow *testServer
}

func newDataPair(t testing.TB, withLog bool) dataPair {
	limits := func(o *smtpd.Options) {
		o.MaxMessageBytes = 64 << 10
		o.MaxLineBytes = 2048
		o.ReadTimeout = 2 * time.Second
		if withLog {
			// The session log puts its connection between go-smtp and the
			// reply buffer.
			o.SessionLog = smtplog.New(smtplog.Options{})
		}
	}
	slow := newTestServer(t, limits)
	smtpd.SetFastData(slow.srv, false)
	return dataPair{fast: newTestServer(t, limits), slow: slow}
}

// deliver sends body after a DATA answered 354, in writes of chunk bytes
// (0: one write), and returns the reply and, on 250, the stored bytes.
func deliver(t testing.TB, ts *testServer, body []byte, chunk int) (string, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	reply := func() string {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return "read: " + err.Error()
			}
			if len(line) < 4 || line[3] != '-' {
				return strings.TrimRight(line, "\r\n")
			}
		}
	}
	reply()
	for _, cmd := range []string{"EHLO c", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if r := reply(); r[0] != '2' && r[0] != '3' {
			t.Fatalf("%s: %s", cmd, r)
		}
	}
	if chunk <= 0 {
		chunk = len(body)
	}
	for rest := body; len(rest) > 0; {
		n := min(chunk, len(rest))
		if _, err := c.Write(rest[:n]); err != nil {
			break // the server may have hung up on a refused body
		}
		rest = rest[n:]
	}
	r := reply()
	id, ok := strings.CutPrefix(r, "250 2.0.0 Ok: queued as ")
	if !ok {
		return r, nil
	}
	raw, err := ts.st.Raw(context.Background(), id)
	if err != nil {
		t.Fatalf("stored %s: %v", id, err)
	}
	return "250", raw
}

var connAddrs = regexp.MustCompile(`tcp \S+->\S+`)

// same sends body to both servers and fails unless both answer alike and
// store the same bytes.
func (p dataPair) same(t testing.TB, body []byte, chunk int) {
	t.Helper()
	fr, fraw := deliver(t, p.fast, body, chunk)
	sr, sraw := deliver(t, p.slow, body, chunk)
	// A body go-smtp never sees the end of times out on either server.
	fr, sr = connAddrs.ReplaceAllString(fr, "ADDRS"), connAddrs.ReplaceAllString(sr, "ADDRS")
	if fr != sr || !bytes.Equal(fraw, sraw) {
		t.Fatalf("body %q (%d bytes, writes of %d):\nfast path: %s %q\ngo-smtp:   %s %q", cut(body), len(body), chunk, fr, cut(fraw), sr, cut(sraw))
	}
}

// TestDataFastPathStoresWhatGoSMTPReads sends bodies that exercise dot
// stuffing, the end line, odd line endings and the limits to a server
// with the DATA fast path and to one without, and compares what each
// answered and stored.
func TestDataFastPathStoresWhatGoSMTPReads(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 2040)
	bodies := []string{
		"Subject: plain\r\n\r\nhello\r\n.\r\n",
		".\r\n",
		"\r\n.\r\n",
		".first line dot-stuffed\r\n..second\r\n...\r\n.\r\n",
		"Subject: dots\r\n\r\n..\r\n.x\r\nend\r\n.\r\n",
		"bare\nlf\n.\nstill body\r\n.\r\n",
		"cr cr\r\r\n.\r\nnot the end for go-smtp\r\n.\r\n",
		"dot cr\r\n.\rX\r\n.\r\n",
		"\xff\xfe 8-bit \x00 bytes\r\n.\r\n",
		"a line at the limit " + long + "\r\n.\r\n",
		"a line over the limit " + long + long + "\r\n.\r\n",
		strings.Repeat("a 64-byte line of body text, repeated to pass the size limit..\r\n", 1100) + ".\r\n",
		strings.Repeat("a 64-byte line of body text, repeated to near the size limit...\r\n", 1023) + ".\r\n",
		"pipelined quit follows\r\n.\r\nQUIT\r\n",
	}
	for _, withLog := range []bool{false, true} {
		p := newDataPair(t, withLog)
		for _, b := range bodies {
			for _, chunk := range []int{0, 1, 5, 4096} {
				if chunk > 0 && chunk < 100 && len(b) > 4096 {
					chunk *= 1000 // tiny writes of a large body outlast the read timeout
				}
				p.same(t, []byte(b), chunk)
			}
		}
		// The fast path must have taken the ordinary bodies (and so been
		// compared), not left every one to go-smtp.
		if n := smtpd.FastDataCount(p.fast.srv); n < 20 {
			t.Errorf("session log %v: fast path took %d bodies, want most of %d", withLog, n, 4*len(bodies))
		}
		if n := smtpd.FastDataCount(p.slow.srv); n != 0 {
			t.Errorf("fast path off, yet it took %d bodies", n)
		}
	}
}

// FuzzDataFastPath compares the DATA fast path with go-smtp's reader on
// arbitrary bodies (ended by "x" and an end-of-data line), written in
// pieces.
//
//	go test -run '^$' -fuzz '^FuzzDataFastPath$' -fuzztime 5m ./capture/smtpd/
func FuzzDataFastPath(f *testing.F) {
	for _, s := range []string{"hi\r\n", ".a\r\n..\r\n", "\r\r\n.\r\n", ".\rx", "x\n.\n", "\r\n.\r", strings.Repeat("y", 3000)} {
		f.Add([]byte(s), uint16(0))
		f.Add([]byte(s), uint16(3))
	}
	p := newDataPair(f, false)
	f.Fuzz(func(t *testing.T, body []byte, chunk uint16) {
		// After "x" go-smtp's reader is mid-line whatever came before, so
		// the end line always ends the body for both readers.
		p.same(t, append(body, "x\r\n.\r\n"...), int(chunk))
	})
}

func cut(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:150:150], append([]byte("…"), b[len(b)-150:]...)...)
	}
	return b
}
