package sendmail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// DefaultSMTPAddr is where the sandbox listens unless told otherwise.
const DefaultSMTPAddr = "127.0.0.1:1025"

// Env holds what Run takes from its surroundings.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment: MAILSANDBOX_SMTP_ADDR (else Mailpit's
	// MP_SENDMAIL_SMTP_ADDR) and NAME (the sender's full name).
	Getenv func(string) string
	// Now is the clock for the Date field: nil means time.Now.
	Now func() time.Time
	// Hostname names this host in Message-Id and a default sender: nil
	// means os.Hostname.
	Hostname func() (string, error)
	// Dial opens the connection to the sandbox: nil means a net.Dialer
	// with a 10s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Timeout bounds a whole submission: a sandbox that accepts but never
// answers must not hang PHP's mail() or cron.
const Timeout = 5 * time.Minute

// Run is sendmail: name is the program's base name ("sendmail", "mailq",
// "newaliases"), args the command line after it. It returns the exit
// status; every failure is one line on stderr.
func Run(ctx context.Context, name string, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Hostname == nil {
		env.Hostname = os.Hostname
	}
	if env.Dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		env.Dial = d.DialContext
	}
	fail := func(code int, format string, a ...any) int {
		msg := strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", " ")
		fmt.Fprintf(env.Stderr, "%s: %s\n", name, strings.TrimSpace(msg))
		return code
	}
	a, err := Parse(name, args)
	var ue *UsageError
	if errors.As(err, &ue) {
		return fail(exUsage, "%s", ue.Msg)
	}
	for _, w := range a.Warnings {
		fmt.Fprintf(env.Stderr, "%s: warning: %s\n", name, w)
	}
	s := &session{a: a, env: env, name: name, fail: fail}
	s.addr = smtpAddr(a.SMTPAddr, env.Getenv)
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	s.ctx = ctx
	switch {
	case a.QueueTime && a.Mode != ModeDaemon, a.FlushTarget:
		// Nothing waits in a local queue: every message went to the
		// sandbox when it was submitted.
		return exOK
	}
	switch a.Mode {
	case ModeMailq:
		fmt.Fprintln(env.Stdout, "Mail queue is empty")
		return exOK
	case ModeNewaliases, ModeIgnore, ModeFlush:
		return exOK
	case ModeDaemon:
		return fail(exUnavailable, "daemon mode (-bd, -bl) is not offered here: start the sandbox with `mailsandbox run`")
	case ModeSMTP:
		return s.proxy(ctx)
	case ModeVerify:
		return s.verify(ctx)
	}
	return s.deliver(ctx)
}

// smtpAddr picks the sandbox's address: the flag, MAILSANDBOX_SMTP_ADDR,
// Mailpit's MP_SENDMAIL_SMTP_ADDR, the default. A listen address
// ("0.0.0.0:1025", ":1025") is dialled on loopback.
func smtpAddr(flag string, getenv func(string) string) string {
	addr := flag
	for _, k := range []string{"MAILSANDBOX_SMTP_ADDR", "MP_SENDMAIL_SMTP_ADDR"} {
		if addr == "" {
			addr = getenv(k)
		}
	}
	if addr == "" {
		return DefaultSMTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

type session struct {
	ctx  context.Context
	a    Args
	env  Env
	name string
	addr string
	fail func(code int, format string, a ...any) int
}

// dial connects to the sandbox and reads its greeting and EHLO answer.
func (s *session) dial(ctx context.Context) (*smtp.Client, int) {
	conn, err := s.env.Dial(ctx, "tcp", s.addr)
	if err != nil {
		return nil, s.fail(exTempFail, "cannot reach the sandbox at %s (is it running? set --smtp-addr, -S or MAILSANDBOX_SMTP_ADDR): %v", s.addr, err)
	}
	// go-smtp sets its own deadline per command, so ctx ends the session
	// by closing the connection.
	context.AfterFunc(ctx, func() { conn.Close() })
	c := smtp.NewClient(conn)
	if s.a.Verbose > 0 {
		c.DebugWriter = s.env.Stderr
	}
	if err := c.Hello("localhost"); err != nil {
		c.Close()
		return nil, s.smtpFail("greeting", err)
	}
	return c, exOK
}

// smtpFail maps an SMTP failure to sendmail's statuses: 5xx is refused
// for good (69), anything else may work later (75).
func (s *session) smtpFail(what string, err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code := exTempFail
		if se.Code >= 500 {
			code = exUnavailable
		}
		return s.fail(code, "the sandbox at %s refused %s: %d %s", s.addr, what, se.Code, se.Message)
	}
	if ctx := s.ctx; ctx != nil && ctx.Err() != nil {
		return s.fail(exTempFail, "the sandbox at %s did not answer in time (%s)", s.addr, what)
	}
	return s.fail(exTempFail, "talking to the sandbox at %s (%s): %v", s.addr, what, err)
}

func (s *session) deliver(ctx context.Context) int {
	// The sandbox's size limit is known only after EHLO; read the
	// message first so nothing is sent before it is whole.
	raw, err := readMessage(s.env.Stdin, s.a.IgnoreDots, 0)
	if err != nil {
		return s.fail(exDataErr, "error reading the message on standard input: %v", err)
	}
	h := splitHeader(raw)
	rcpts := append([]string(nil), s.a.Recipients...)
	if s.a.Extract {
		found, err := extractRecipients(h)
		if err != nil {
			return s.fail(exDataErr, "%v", err)
		}
		if len(found) == 0 && len(rcpts) == 0 {
			return s.fail(exUsage, "no recipient addresses found in message header")
		}
		rcpts = append(rcpts, found...)
	}
	if len(rcpts) == 0 {
		return s.fail(exUsage, "recipient addresses must be specified on the command line or via the -t option")
	}
	host := s.hostname()
	sender := s.sender(h, host)
	fullName := s.a.FullName
	if !s.a.FullNameSet {
		fullName = s.env.Getenv("NAME")
	}
	if !s.a.FullNameSet && fullName == "" {
		// The account's name, as Postfix takes it from the GECOS field.
		if u, err := user.Current(); err == nil {
			fullName, _, _ = strings.Cut(u.Name, ",")
		}
	}
	raw = fixup{now: s.env.Now(), hostname: host, sender: sender, fullName: fullName, dropBcc: s.a.Extract}.apply(raw, h)

	c, code := s.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	if max, ok := c.MaxMessageSize(); ok && max > 0 && len(raw) > max {
		_ = c.Quit()
		return s.fail(exUnavailable, "message is %d bytes, over the sandbox's limit of %d bytes; nothing was sent", len(raw), max)
	}
	opts := &smtp.MailOptions{Size: int64(len(raw)), Return: smtp.DSNReturn(s.a.Return), EnvelopeID: s.a.EnvID}
	if ok, _ := c.Extension("SMTPUTF8"); ok && !ascii(sender+strings.Join(rcpts, "")) {
		opts.UTF8 = true
	}
	if err := c.Mail(sender, opts); err != nil {
		return s.smtpFail("the sender <"+sender+">", err)
	}
	var ro *smtp.RcptOptions
	if len(s.a.Notify) > 0 {
		ro = &smtp.RcptOptions{}
		for _, n := range s.a.Notify {
			ro.Notify = append(ro.Notify, smtp.DSNNotify(n))
		}
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, ro); err != nil {
			// All or nothing: one refused recipient stops the message.
			_ = c.Reset()
			return s.smtpFail("the recipient <"+r+">; nothing was sent", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return s.smtpFail("DATA; nothing was sent", err)
	}
	if _, err := w.Write(raw); err != nil {
		return s.smtpFail("the message", err)
	}
	if err := w.Close(); err != nil {
		return s.smtpFail("the message; it was not stored", err)
	}
	_ = c.Quit()
	return exOK
}

// sender is the envelope sender: -f/-r ("<>" or "" is the null sender),
// else the From field's address, else user@host.
func (s *session) sender(h header, host string) string {
	if s.a.SenderSet {
		v := strings.TrimSpace(s.a.Sender)
		if strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">") {
			v = strings.TrimSpace(v[1 : len(v)-1])
		}
		return v
	}
	for _, v := range h.values("From") {
		if list, err := parseAddressList(v); err == nil && len(list) > 0 {
			return list[0]
		}
	}
	name := "sendmail"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return name + "@" + host
}

func (s *session) hostname() string {
	h, err := s.env.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// verify is -bv: each recipient is tried with RCPT and the answer
// printed; nothing is sent. Postfix mails a report instead; a sandbox
// user wants to see it.
func (s *session) verify(ctx context.Context) int {
	if len(s.a.Recipients) == 0 {
		return s.fail(exUsage, "-bv needs recipient addresses")
	}
	c, code := s.dial(ctx)
	if c == nil {
		return code
	}
	defer c.Close()
	sender := s.a.Sender
	if !s.a.SenderSet {
		sender = "postmaster@" + s.hostname()
	}
	if err := c.Mail(sender, nil); err != nil {
		return s.smtpFail("the sender <"+sender+">", err)
	}
	status := exOK
	for _, r := range s.a.Recipients {
		if err := c.Rcpt(r, nil); err != nil {
			fmt.Fprintf(s.env.Stdout, "<%s>: undeliverable: %v\n", r, err)
			status = exUnavailable
			continue
		}
		fmt.Fprintf(s.env.Stdout, "<%s>: deliverable\n", r)
	}
	_ = c.Reset()
	_ = c.Quit()
	return status
}

// proxy is -bs: the SMTP dialogue on stdin/stdout is carried to the
// sandbox and back unchanged, so the caller talks to the sandbox itself.
func (s *session) proxy(ctx context.Context) int {
	conn, err := s.env.Dial(ctx, "tcp", s.addr)
	if err != nil {
		return s.fail(exTempFail, "cannot reach the sandbox at %s (is it running? set --smtp-addr, -S or MAILSANDBOX_SMTP_ADDR): %v", s.addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		_, _ = io.Copy(conn, s.env.Stdin)
		// The caller is done writing: let the sandbox see EOF, keep
		// reading its last answers.
		if tc, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
	}()
	if _, err := io.Copy(s.env.Stdout, conn); err != nil && ctx.Err() == nil {
		return s.fail(exTempFail, "SMTP session with the sandbox at %s: %v", s.addr, err)
	}
	// The sandbox hung up (after QUIT): stdin may stay open; do not wait.
	return exOK
}
