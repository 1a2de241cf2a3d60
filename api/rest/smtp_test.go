package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// startSMTP runs the real SMTP endpoint over e's store and returns its
// address.
func (e *testEnv) startSMTP(t testing.TB) string {
	t.Helper()
	srv := smtpd.New(e.st, smtpd.Options{}, quietLogger())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// sendSMTP sends raw to rcpts with Go's SMTP client; it returns once the
// server answered 250 to the end of data.
func sendSMTP(t testing.TB, addr, from string, rcpts []string, raw []byte) {
	t.Helper()
	if err := smtp.SendMail(addr, nil, from, rcpts, raw); err != nil {
		t.Fatalf("send mail: %v", err)
	}
}

func TestSMTPToREST(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	addr := e.startSMTP(t)
	raw := []byte("From: Alice <alice@example.com>\r\nTo: bob@example.com, Carol <carol@example.com>\r\n" +
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= over SMTP\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <smtp-1@example.com>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe aus Z=FCrich\r\n" +
		"--B\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+R3LDvMOfZTwvcD4=\r\n--B--\r\n")

	// A wait for the message is pending before it is sent.
	ch := e.startWait(t, "to=carol@&subject=gr%C3%BC%C3%9Fe&timeout=20s")
	sendSMTP(t, addr, "alice@example.com", []string{"bob@example.com", "Carol@Example.com", "dave@example.com"}, raw)
	got := waitResult(t, ch)
	if len(got) != 1 {
		t.Fatalf("wait = %+v", got)
	}
	var m messageJSON
	e.getJSON("/messages/"+got[0].ID, "Message", &m)
	if m.Subject != "Grüße over SMTP" || strings.TrimSpace(m.Text) != "Grüße aus Zürich" || m.HTML != "<p>Grüße</p>" || m.MessageID != "smtp-1@example.com" {
		t.Errorf("decoded: subject %q text %q html %q id %q", m.Subject, m.Text, m.HTML, m.MessageID)
	}
	if !slices.Equal(m.Mailboxes, []string{"bob@example.com", "carol@example.com", "dave@example.com"}) {
		t.Errorf("mailboxes %v", m.Mailboxes)
	}
	if len(m.Bcc) != 1 || m.Bcc[0].Address != "dave@example.com" {
		t.Errorf("bcc %+v", m.Bcc)
	}
	r := e.expect(http.MethodGet, "/api/v1/messages/"+m.ID+"/raw", nil, "", 200)
	if !bytes.Equal(r.body, raw) {
		t.Errorf("raw differs from what was sent:\n%q\n%q", r.body, raw)
	}
	// The three copies, each with its own state.
	for _, mb := range m.Mailboxes {
		var l summaryList
		e.getJSON("/mailboxes/"+mb+"/messages", "MessageList", &l)
		if l.Total != 1 || l.Messages[0].ID != m.ID {
			t.Errorf("%s lists %+v", mb, l)
		}
	}
}

// moduleRoot is the directory holding go.mod.
func moduleRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// Every message of the shared MIME corpus goes in (raw POST where it names
// recipients, otherwise the store's ingest) and comes back: the whole
// message as JSON matching the schema, every listed part, and the raw bytes
// unchanged.
func TestCorpusRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(moduleRoot(t), "..", "shared", "mime-corpus")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		need.Skip(t, need.Corpus, "not found at "+dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestServer(t)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			e := e.with(t)
			var id string
			r := e.do(http.MethodPost, "/api/v1/messages", raw, "message/rfc822")
			switch r.status {
			case http.StatusCreated:
				var c struct{ ID string }
				json.Unmarshal(r.body, &c)
				id = c.ID
			case http.StatusBadRequest: // no recipients in the headers
				id, err = e.st.Ingest(t.Context(), store.Envelope{From: "corpus@example.com", To: []string{"corpus@example.com"}}, raw)
				if err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("POST = %s", r)
			}
			var m messageJSON
			e.getJSON("/messages/"+id, "Message", &m)
			for _, a := range m.Attachments {
				p := e.expect(http.MethodGet, "/api/v1/messages/"+id+"/parts/"+a.ID, nil, "", 200)
				if len(p.body) != a.Size {
					t.Errorf("part %s: %d bytes, listed as %d", a.ID, len(p.body), a.Size)
				}
			}
			got := e.expect(http.MethodGet, "/api/v1/messages/"+id+"/raw", nil, "", 200)
			if !bytes.Equal(got.body, raw) {
				t.Fatalf("raw differs (%d bytes sent, %d served)", len(raw), len(got.body))
			}
		})
	}
	if n == 0 {
		need.Skip(t, need.Corpus, dir+" is empty")
	}
}

// curl, a real HTTP client outside Go, submits and reads back a message.
func TestCurl(t *testing.T) {
	t.Parallel()
	curl := need.Command(t, need.Curl, "curl")
	e := newTestServer(t)
	eml := filepath.Join(t.TempDir(), "m.eml")
	raw := "From: a@example.com\r\nTo: curl@example.com\r\nSubject: via curl\r\n\r\nhello\r\n"
	os.WriteFile(eml, []byte(raw), 0o600)
	out, err := exec.Command(curl, "-sS", "--fail-with-body", "-H", "Content-Type: message/rfc822",
		"--data-binary", "@"+eml, e.url+"/api/v1/messages").CombinedOutput()
	if err != nil {
		t.Fatalf("curl POST: %v: %s", err, out)
	}
	var c struct{ ID string }
	if err := json.Unmarshal(out, &c); err != nil || c.ID == "" {
		t.Fatalf("curl POST answered %s", out)
	}
	out, err = exec.Command(curl, "-sS", "--fail-with-body", e.url+"/api/v1/messages/"+c.ID+"/raw").CombinedOutput()
	if err != nil || string(out) != raw {
		t.Fatalf("curl raw: %v: %q", err, out)
	}
	out, err = exec.Command(curl, "-sS", "-G", "--data-urlencode", "to=curl@example.com", "--data-urlencode", "timeout=5s",
		e.url+"/api/v1/messages/wait").CombinedOutput()
	if err != nil || !strings.Contains(string(out), c.ID) {
		t.Fatalf("curl wait: %v: %s", err, out)
	}
	out, _ = exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", e.url+"/api/v1/messages/search?since=bad").CombinedOutput()
	if string(out) != "400" {
		t.Fatalf("curl bad since: %s", out)
	}
}
