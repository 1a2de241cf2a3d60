// Package smtpbench is what the ingest benchmarks of several packages
// share: a pipelining SMTP sender, a run of concurrent senders that reports
// messages a second and CPU per message, and the process's CPU time.
package smtpbench

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Send sends messages over one connection while more says so, with
// PIPELINING (MAIL, RCPT and DATA in one write), as mailers that support it
// do; body is the message, dot-stuffed, ending in CRLF.
func Send(addr string, body []byte, more func() bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("smtpbench: dial %s: %w", addr, err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	bw := bufio.NewWriterSize(c, 64<<10)
	read := func(code string) error {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("smtpbench: read reply: %w", err)
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("smtpbench: got %q, want %s", line, code)
			}
			if len(line) < 4 || line[3] != '-' {
				return nil
			}
		}
	}
	if err := read("220"); err != nil {
		return err
	}
	fmt.Fprintf(bw, "EHLO bench\r\n")
	bw.Flush()
	if err := read("250"); err != nil {
		return err
	}
	for more() {
		fmt.Fprintf(bw, "MAIL FROM:<bench@example.com>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n")
		bw.Flush()
		for _, code := range []string{"250", "250", "354"} {
			if err := read(code); err != nil {
				return err
			}
		}
		bw.Write(body)
		bw.WriteString(".\r\n")
		bw.Flush()
		if err := read("250"); err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "QUIT\r\n")
	bw.Flush()
	return read("221")
}

// Run sends b.N messages to addr from conns connections at once (Send on
// each) and reports msgs/s and cpu-µs/msg: the process's CPU per message
// (client, server and store), on a shared machine a steadier figure than
// the wall clock.
func Run(b *testing.B, addr string, body []byte, conns int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	b.ResetTimer()
	cpu0 := CPUTime()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Send(addr, body, func() bool { return next.Add(1) <= int64(b.N) }); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// CPUTime is the process's user and system CPU time so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
