package mailparse_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
)

// corpusDir is ../shared/mime-corpus beside the checkout: there in CI and
// for the team, not in a user's clone.
func corpusDir(t testing.TB) string {
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "mime-corpus"))
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("MIME corpus not found at %s (it sits beside the checkout in CI): %v", dir, err)
	}
	return dir
}

func TestCorpusParsesWithoutPanicOrLoss(t *testing.T) {
	dir := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "msg_*.txt"))
	if len(files) == 0 {
		t.Fatalf("no messages in %s", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := mailparse.Parse(raw)
		if m == nil {
			t.Fatalf("%s: nil message", f)
		}
		// Every attachment listed can be fetched by its part id.
		for _, p := range m.Attachments {
			body, _, _, err := mailparse.PartBody(raw, p.ID)
			if err != nil {
				t.Errorf("%s: part %s: %v", filepath.Base(f), p.ID, err)
				continue
			}
			if len(body) != p.Size {
				t.Errorf("%s: part %s: %d bytes, listed %d", filepath.Base(f), p.ID, len(body), p.Size)
			}
		}
		if len(m.Problems) > 0 {
			t.Logf("%s: parsed with problems: %s", filepath.Base(f), m.ParseError())
		}
	}
}

func TestFixtures(t *testing.T) {
	cases := []struct {
		file  string
		check func(t *testing.T, m *mailparse.Message)
	}{
		{"multipart-alternative-with-attachment.eml", func(t *testing.T, m *mailparse.Message) {
			if m.Text != "Hello Bob,\r\nyour code is 481516." {
				t.Errorf("text %q", m.Text)
			}
			if !strings.Contains(m.HTML, "<b>481516</b>") {
				t.Errorf("html %q", m.HTML)
			}
			if len(m.Attachments) != 2 || !m.HasAttachments {
				t.Fatalf("attachments %+v", m.Attachments)
			}
			a := m.Attachments[1]
			if a.Filename != "report.pdf" || a.ContentType != "application/pdf" || a.Size != 10 || a.Inline || a.ID != "2" {
				t.Errorf("attachment %+v", a)
			}
			img := m.Attachments[0]
			if !img.Inline || img.ContentID != "logo@x" || img.ID != "1.2" {
				t.Errorf("inline image %+v", img)
			}
		}},
		{"latin1-encoded-words.eml", func(t *testing.T, m *mailparse.Message) {
			if m.Subject != "Grüße aus Köln" || m.From.Name != "Jürgen Müller" {
				t.Errorf("subject %q from %+v", m.Subject, m.From)
			}
			if m.Text != "Schöne Grüße\r\n" {
				t.Errorf("text %q", m.Text)
			}
		}},
		{"unknown-charset.eml", func(t *testing.T, m *mailparse.Message) {
			if !strings.Contains(m.Text, "plain words") {
				t.Errorf("text of unknown charset lost: %q", m.Text)
			}
		}},
		{"no-header-at-all.eml", func(t *testing.T, m *mailparse.Message) {
			if m.Subject != "" {
				t.Errorf("subject %q", m.Subject)
			}
		}},
		{"broken-boundary.eml", func(t *testing.T, m *mailparse.Message) {
			if m.Subject != "broken" {
				t.Errorf("subject %q", m.Subject)
			}
		}},
		{"bad-addresses.eml", func(t *testing.T, m *mailparse.Message) {
			if len(m.To) == 0 {
				t.Errorf("bad To list dropped entirely")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, mailparse.Parse(raw))
		})
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := mailparse.Parse(raw)
		for _, p := range m.Attachments {
			_, _, _, _ = mailparse.PartBody(raw, p.ID)
		}
		_ = m.SearchText()
	})
}

func TestSnippet(t *testing.T) {
	long := strings.Repeat("word  \r\n\t", 1000)
	m := mailparse.Parse([]byte("Subject: s\r\n\r\n" + long))
	if !strings.HasSuffix(m.Snippet, "…") || strings.Contains(m.Snippet, "  ") || len([]rune(m.Snippet)) != 201 {
		t.Fatalf("snippet %q (%d runes)", m.Snippet, len([]rune(m.Snippet)))
	}
	m = mailparse.Parse([]byte("Subject: s\r\n\r\n  short\r\n text \r\n"))
	if m.Snippet != "short text" {
		t.Fatalf("snippet %q", m.Snippet)
	}
}
