package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// sendmail submits one message from stdin to the sandbox over SMTP, like
// the sendmail(8) that PHP's mail() and many tools call: recipients from
// the arguments, or from To/Cc/Bcc with -t (Bcc is then removed from the
// message, as sendmail does).
func sendmail(args []string, stdin io.Reader, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("sendmail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromHeaders := fs.Bool("t", false, "read recipients from the To, Cc and Bcc headers")
	from := fs.String("f", "", "envelope sender")
	smtpAddr := fs.String("smtp-addr", "", "the sandbox's SMTP address (default $MAILSANDBOX_SMTP_ADDR, else 127.0.0.1:1025)")
	// Accepted and ignored, as many callers pass them out of habit.
	fs.Bool("i", false, "ignored: a lone dot does not end the message")
	fs.Bool("oi", false, "ignored: same as -i")
	fs.String("F", "", "ignored: full name of the sender")
	fs.String("o", "", "ignored: sendmail option")
	fs.Bool("bm", false, "ignored: deliver mail (the default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: read message: %v\n", err)
		return 1
	}
	raw = crlf(raw)
	rcpts := fs.Args()
	if *fromHeaders {
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			fmt.Fprintf(stderr, "sendmail: -t: read header: %v\n", err)
			return 1
		}
		for _, h := range []string{"To", "Cc", "Bcc"} {
			if msg.Header.Get(h) == "" {
				continue
			}
			list, err := msg.Header.AddressList(h)
			if err != nil {
				fmt.Fprintf(stderr, "sendmail: -t: %s: %v\n", h, err)
				return 1
			}
			for _, a := range list {
				rcpts = append(rcpts, a.Address)
			}
		}
		raw = dropHeader(raw, "Bcc")
	}
	if len(rcpts) == 0 {
		fmt.Fprintln(stderr, "sendmail: no recipients (give them as arguments, or use -t)")
		return 2
	}
	// -f takes an address with or without angle brackets; "<>" is the
	// null sender, as bounces use.
	sender := strings.TrimSpace(*from)
	nullSender := sender == "<>"
	if strings.HasPrefix(sender, "<") && strings.HasSuffix(sender, ">") {
		sender = strings.TrimSpace(sender[1 : len(sender)-1])
	}
	if sender == "" && !nullSender {
		if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
			if a, err := mail.ParseAddress(msg.Header.Get("From")); err == nil {
				sender = a.Address
			}
		}
	}
	if sender == "" && !nullSender {
		name := "sendmail"
		if u, err := user.Current(); err == nil && u.Username != "" {
			name = u.Username
		}
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		sender = name + "@" + host
	}
	addr := *smtpAddr
	if addr == "" {
		addr = getenv(envName("smtp-addr"))
	}
	if addr == "" {
		addr = sandbox.DefaultConfig().SMTPAddr
	}
	if strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1:" + strings.TrimPrefix(addr, "0.0.0.0:")
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: cannot reach the sandbox at %s (is it running? set --smtp-addr or %s): %v\n", addr, envName("smtp-addr"), err)
		return 1
	}
	// A sandbox that accepts but never answers must not hang the caller
	// (PHP's mail() waits for us).
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.SendMail(sender, rcpts, bytes.NewReader(raw)); err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return 1
	}
	if err := c.Quit(); err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return 1
	}
	return 0
}

// crlf turns bare LF line ends into CRLF, as SMTP wants.
func crlf(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Count(b, []byte("\r\n")) == bytes.Count(b, []byte("\n")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// dropHeader removes every field named name (and its continuation lines)
// from the header of raw.
func dropHeader(raw []byte, name string) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return raw
	}
	var out bytes.Buffer
	skipping := false
	for _, line := range strings.SplitAfter(string(raw[:end+2]), "\r\n") {
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !skipping {
				out.WriteString(line)
			}
			continue
		}
		k, _, _ := strings.Cut(line, ":")
		skipping = strings.EqualFold(strings.TrimSpace(k), name)
		if !skipping {
			out.WriteString(line)
		}
	}
	out.Write(raw[end+2:])
	return out.Bytes()
}
