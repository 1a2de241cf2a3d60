package smtpd

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
	"github.com/mailsandbox/mailsandbox/internal/smtpbench"
)

// scriptConn is a client that has sent script (served in the chunks a
// socket would deliver) and whose replies go nowhere.
type scriptConn struct {
	chunks [][]byte
	next   int
	cur    []byte
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		if c.next == len(c.chunks) {
			return 0, io.EOF
		}
		c.cur = c.chunks[c.next]
		c.next++
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
func (c *scriptConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// BenchmarkSessionConn is the CPU the session log and the fault hooks add
// to one message of a pipelined session (BenchmarkIngestFaults' client:
// MAIL, RCPT and DATA in one packet, a 1 KB body, replies as go-smtp
// writes them), measured without the store and the SMTP parser, which
// cost the same in every case: raw is the connection alone. Unlike the
// end-to-end benchmark, this holds steady on a loaded machine; divide the
// difference by BenchmarkIngestFaults' cpu-µs/msg for the share of ingest.
//
//	go test -run XXX -bench SessionConn ./capture/smtpd/
func BenchmarkSessionConn(b *testing.B) {
	var body strings.Builder
	body.WriteString("From: Bench <bench@example.com>\r\nTo: sink@example.com\r\nSubject: load test\r\nMessage-ID: <x@bench>\r\n\r\n")
	for body.Len() < 1<<10-70 {
		body.WriteString("The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ.\r\n")
	}
	body.WriteString(".\r\n")
	cmds := []byte("MAIL FROM:<bench@example.com>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n")
	data := []byte(body.String())
	replies := [][]byte{[]byte("250 2.0.0 Roger, accepting mail from <bench@example.com>\r\n"),
		[]byte("250 2.0.0 I'll make sure <sink@example.com> gets this\r\n"),
		[]byte("354 Go ahead. End your data with <CR><LF>.<CR><LF>\r\n")}
	done := []byte("250 2.0.0 Ok: queued as 01M92Q53RZMVPC88WNTT8GKREJ\r\n")
	const perSession = 100 // messages a connection carries before the next
	nonMatching := faults.New(faults.Options{})
	for i := 0; i < 100; i++ {
		if _, err := nonMatching.Add(faults.Rule{Stage: faults.StageMail, From: fmt.Sprintf("*@nomatch%d.test", i), Reply: "451 4.7.1 no"}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"raw", Options{}},
		{"log", Options{SessionLog: smtplog.New(smtplog.Options{})}},
		{"100-nonmatching+log", Options{Faults: nonMatching, SessionLog: smtplog.New(smtplog.Options{})}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := &Server{opts: c.opts, closing: make(chan struct{}), metrics: newMetrics(nil)}
			s.opts.setDefaults()
			buf := make([]byte, 4096)
			readAll := func(r io.Reader, n int) {
				for n > 0 {
					k, err := r.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					n -= k
				}
			}
			chunks := make([][]byte, 0, 2*perSession)
			for range perSession {
				chunks = append(chunks, cmds, data)
			}
			b.SetBytes(int64(len(cmds) + len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := smtpbench.CPUTime()
			var conn net.Conn
			for i := 0; i < b.N; i++ {
				if i%perSession == 0 {
					if conn != nil {
						conn.Close()
					}
					sc := &scriptConn{chunks: chunks}
					conn = sc
					if s.wrapsSessions() {
						conn = s.wrapSession(sc, false)
					}
					_, _ = conn.Write([]byte("220 mailsandbox ESMTP Service Ready\r\n"))
				}
				readAll(conn, len(cmds))
				for _, r := range replies {
					_, _ = conn.Write(r)
				}
				readAll(conn, len(data))
				_, _ = conn.Write(done)
			}
			b.StopTimer()
			// CPU time, as BenchmarkIngestFaults' cpu-µs/msg: on a loaded
			// machine wall time counts other processes' turns too.
			b.ReportMetric(float64((smtpbench.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/msg")
		})
	}
}
