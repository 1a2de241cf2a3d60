package sendmail

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// refuser is an SMTP server that refuses chosen recipients or the
// message at the end of DATA, and records what reached it.
type refuser struct {
	mu       sync.Mutex
	dataSeen int
	stored   int
	rcptErr  map[string]error
	dataErr  error
}

type refuserSession struct{ r *refuser }

func (s refuserSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s refuserSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	return s.r.rcptErr[to]
}
func (s refuserSession) Data(rd io.Reader) error {
	_, _ = io.Copy(io.Discard, rd)
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.dataSeen++
	if s.r.dataErr != nil {
		return s.r.dataErr
	}
	s.r.stored++
	return nil
}
func (s refuserSession) Reset()        {}
func (s refuserSession) Logout() error { return nil }

func newRefuser(t *testing.T, r *refuser) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return refuserSession{r}, nil }))
	srv.Domain = "refuser.test"
	srv.AllowInsecureAuth = true
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func runWith(t *testing.T, addr, stdin string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), "sendmail", append([]string{"-S", addr}, args...), Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(string) string { return "" },
		Now:    func() time.Time { return time.Unix(0, 0) },
	})
	return code, stderr.String()
}

// TestRefusalsSendNothing: a refused recipient stops the message before
// DATA; a message refused at the end of DATA is reported with the
// server's words and a 5xx/4xx status; each is one line.
func TestRefusalsSendNothing(t *testing.T) {
	r := &refuser{rcptErr: map[string]error{"no@example.com": &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}}
	addr := newRefuser(t, r)
	code, errOut := runWith(t, addr, "Subject: x\n\nbody\n", "ok@example.com", "no@example.com")
	if code != exUnavailable || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "<no@example.com>") || !strings.Contains(errOut, "no such user") {
		t.Errorf("refused recipient: %d %q", code, errOut)
	}
	if r.dataSeen != 0 {
		t.Errorf("DATA was sent after a refused recipient")
	}
	r.dataErr = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big"}
	code, errOut = runWith(t, addr, "Subject: x\n\nbody\n", "ok@example.com")
	if code != exUnavailable || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "552 message too big") {
		t.Errorf("refused DATA: %d %q", code, errOut)
	}
	r.dataErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	if code, errOut = runWith(t, addr, "Subject: x\n\nbody\n", "ok@example.com"); code != exTempFail {
		t.Errorf("temporary refusal: %d %q", code, errOut)
	}
	if r.stored != 0 {
		t.Errorf("%d messages stored", r.stored)
	}
	r.dataErr = nil
	if code, errOut = runWith(t, addr, "Subject: x\n\nbody\n", "ok@example.com"); code != exOK || errOut != "" || r.stored != 1 {
		t.Errorf("accepted: %d %q stored %d", code, errOut, r.stored)
	}
}

// TestSilentSandboxTimesOut: a sandbox that accepts the connection and
// never answers does not hang the caller past its deadline.
func TestSilentSandboxTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var stderr bytes.Buffer
	code := Run(ctx, "sendmail", []string{"-S", ln.Addr().String(), "x@example.com"}, Env{
		Stdin: strings.NewReader("Subject: x\n\n"), Stdout: io.Discard, Stderr: &stderr, Getenv: func(string) string { return "" },
	})
	if code != exTempFail || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("silent sandbox: %d %q", code, stderr.String())
	}
}
