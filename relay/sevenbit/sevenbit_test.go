package sevenbit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
)

func TestConvert(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Überlänge ", 30)
	cases := []struct {
		name string
		raw  string
		// same: the message is returned unchanged
		same bool
		text string // expected decoded text/plain, "" to skip
		want []string
	}{
		{
			name: "seven-bit stays byte for byte",
			raw:  "Subject: x\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n",
			same: true,
		},
		{
			name: "no MIME header gets one",
			raw:  "Subject: x\r\n\r\nGrüße\r\n",
			text: "Grüße",
			want: []string{"MIME-Version: 1.0", "charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "Gr=C3=BC=C3=9Fe"},
		},
		{
			name: "8bit text becomes quoted-printable, long lines soft-wrapped",
			raw:  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + long + "\r\n",
			text: long,
			want: []string{"Content-Transfer-Encoding: quoted-printable", "=\r\n"},
		},
		{
			name: "binary attachment becomes base64, text part and structure kept",
			raw: "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npre\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
				"--XX\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n\x89PNG\x00\xff\r\n--XX--\r\npost\r\n",
			text: "hello",
			want: []string{"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX", "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORwD/\r\n", "--XX--\r\npost\r\n", "pre\r\n"},
		},
		{
			name: "nested multipart with html",
			raw: "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n" +
				"--i\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnaïve\r\n--i\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>naïve</p>\r\n--i--\r\n--o--\r\n",
			text: "naïve",
			want: []string{"na=C3=AFve", "<p>na=C3=AFve</p>"},
		},
		{
			name: "quoted-printable with stray 8-bit bytes is re-encoded",
			raw:  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9 é\r\n",
			text: "hé é",
		},
		{
			name: "8-bit file name in a part header is encoded",
			raw: "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
				"--XX\r\nContent-Type: application/pdf; name=\"Grüße.pdf\"\r\nContent-Disposition: attachment;\r\n filename=\"Grüße.pdf\"\r\n\r\n%PDF\r\n--XX--\r\n",
			text: "hi",
			want: []string{"Content-Disposition: attachment; filename=\"=?utf-8?b?R3LDvMOfZS5wZGY=?=\"", "name=\"=?utf-8?b?R3LDvMOfZS5wZGY=?=\"", "\r\n\r\n%PDF\r\n--XX--"},
		},
		{
			name: "LF line endings",
			raw:  "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nñ\n",
			text: "ñ",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Convert([]byte(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			if c.same {
				if string(out) != c.raw {
					t.Fatalf("changed:\n%s", out)
				}
				return
			}
			if Is8Bit(out) {
				t.Fatalf("still 8-bit:\n%q", out)
			}
			for _, w := range c.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			if c.name == "8-bit file name in a part header is encoded" {
				if a := mailparse.Parse(out).Attachments; len(a) != 1 || a[0].Filename != "Grüße.pdf" {
					t.Errorf("attachments = %+v", a)
				}
			}
			if c.text != "" {
				got := strings.TrimRight(mailparse.Parse(out).Text, "\r\n")
				if got != c.text {
					t.Errorf("text = %q, want %q\n%s", got, c.text, out)
				}
				if orig := strings.TrimRight(mailparse.Parse([]byte(c.raw)).Text, "\r\n"); orig != got {
					t.Errorf("decodes differently: %q vs original %q", got, orig)
				}
			}
		})
	}
}

func TestHeaderIs8Bit(t *testing.T) {
	t.Parallel()
	if !HeaderIs8Bit([]byte("Subject: Grüße\r\n\r\nx")) {
		t.Error("8-bit subject not seen")
	}
	if HeaderIs8Bit([]byte("Subject: hi\r\n\r\nGrüße")) {
		t.Error("8-bit body counted as header")
	}
}

// TestCorpus converts every message of ../shared/mime-corpus (beside the
// checkout): the result is 7-bit clean wherever the header allows it, and
// reads the same.
func TestCorpus(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "mime-corpus"))
	files, _ := filepath.Glob(filepath.Join(dir, "msg_*.txt"))
	if len(files) == 0 {
		need.Skip(t, need.Corpus, "no msg_*.txt at "+dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Convert(raw)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if !HeaderIs8Bit(raw) && Is8Bit(out) {
			t.Errorf("%s: still 8-bit", filepath.Base(f))
		}
		before, after := mailparse.Parse(raw), mailparse.Parse(out)
		if strings.TrimRight(before.Text, "\r\n") != strings.TrimRight(after.Text, "\r\n") || before.Subject != after.Subject ||
			len(before.Attachments) != len(after.Attachments) {
			t.Errorf("%s: reads differently after conversion:\n%q\n%q", filepath.Base(f), before.Text, after.Text)
		}
	}
}

func TestPartHeaderKeepsSpacesBetweenEncodedWords(t *testing.T) {
	t.Parallel()
	raw := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"Grüße aus Köln — ä.bin\"\r\n\r\n\x80\x81\r\n--b--\r\n"
	out, err := Convert([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if Is8Bit(out) {
		t.Fatalf("8-bit left:\n%s", out)
	}
	p := mailparse.Parse(out)
	if len(p.Attachments) != 1 || p.Attachments[0].Filename != "Grüße aus Köln — ä.bin" {
		t.Fatalf("attachments %+v:\n%s", p.Attachments, out)
	}
}

func TestDowngradeHeader(t *testing.T) {
	t.Parallel()
	raw := "Received: from x by y; Fri, 02 Jan 2026 03:04:05 +0000\r\nFrom: Jörg Müller <a@sender.test>\r\n" +
		"To: \"Bö, Anna\" <b@relay.test>,\r\n c@relay.test\r\nSubject: Grüße aus Köln — \"ça va\"?\r\n" +
		"X-Note: plain\r\n\r\nbody Grüße\r\n"
	out, ok := DowngradeHeader([]byte(raw))
	if !ok {
		t.Fatal("not downgraded")
	}
	if HeaderIs8Bit(out) || !bytes.HasSuffix(out, []byte("\r\n\r\nbody Grüße\r\n")) ||
		!bytes.HasPrefix(out, []byte("Received: from x by y; Fri, 02 Jan 2026 03:04:05 +0000\r\n")) ||
		!bytes.Contains(out, []byte("\r\nX-Note: plain\r\n")) {
		t.Fatalf("downgraded:\n%s", out)
	}
	p := mailparse.Parse(out)
	if p.Subject != "Grüße aus Köln — \"ça va\"?" || p.From.Name != "Jörg Müller" || p.From.Address != "a@sender.test" ||
		len(p.To) != 2 || p.To[0].Name != "Bö, Anna" || p.To[1].Address != "c@relay.test" {
		t.Fatalf("decoded subject %q from %+v to %+v:\n%s", p.Subject, p.From, p.To, out)
	}
	group := "To: Freunde: Jörg <j@x.test>, a@b.test;\r\n\r\nx\r\n"
	out, ok = DowngradeHeader([]byte(group))
	if p := mailparse.Parse(out); !ok || HeaderIs8Bit(out) || !bytes.HasPrefix(out, []byte("To: Freunde: =?utf-8?")) ||
		len(p.To) != 2 || p.To[0].Name != "Jörg" || p.To[1].Address != "a@b.test" {
		t.Fatalf("group downgraded to %q, %v", out, ok)
	}
	seven := "Subject: hi\r\n\r\nGrüße\r\n"
	if out, ok := DowngradeHeader([]byte(seven)); !ok || string(out) != seven {
		t.Fatalf("7-bit header changed: %q", out)
	}
	for _, bad := range []string{
		"From: Jörg <jörg@sender.test>\r\n\r\nx\r\n",
		"To: jörg@relay.test\r\n\r\nx\r\n",
		"Cc: Friends: jörg@relay.test;\r\n\r\nx\r\n",
	} {
		if _, ok := DowngradeHeader([]byte(bad)); ok {
			t.Errorf("%q: a non-ASCII mailbox was downgraded", bad)
		}
	}
}
