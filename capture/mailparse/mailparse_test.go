package mailparse_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
)

// corpusDir is ../shared/mime-corpus beside the checkout: there in CI and
// for the team, not in a user's clone.
func corpusDir(t testing.TB) string {
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "mime-corpus"))
	if _, err := os.Stat(dir); err != nil {
		need.Skip(t, need.Corpus, err.Error())
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

func TestStripHTML(t *testing.T) {
	for in, want := range map[string]string{
		"<p>Grüße <b>bold</b> text</p>": "Grüße bold text",
		"<p>one</p><p>two</p>":          "one two",
		"a<br>b":                        "a b",
		"<b>Bold</b>Needle":             "BoldNeedle",
		"x <!-- a > b --> y":            "x y",
		"<style>p{color:red}</style>shown<script>1<2</script>": "shown",
		"caf&eacute; &amp; &#8364;5 &lt;b&gt;":                 "café & €5 <b>",
		"  lots \n\t of   space&nbsp;here ":                    "lots of space here",
		"unclosed <b":                                          "unclosed",
		"<!-- never closed":                                    "",
	} {
		if got := mailparse.StripHTML(in); got != want {
			t.Errorf("StripHTML(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddressesGoRefuses(t *testing.T) {
	raw := "From: (comment) alice@example.com (Alice A)\r\n" +
		"To: (team) bob@example.com (Bob), Carol <carol@example.com>;\r\n" +
		"Cc: \"Dave\" <dave@example.com> (work);, broken stuff here\r\n" +
		"Subject: x\r\n\r\nbody\r\n"
	m := mailparse.Parse([]byte(raw))
	if m.From.Address != "alice@example.com" || m.From.Name != "Alice A" {
		t.Errorf("from = %+v", m.From)
	}
	var to, cc []string
	for _, a := range m.To {
		to = append(to, a.Name+"|"+a.Address)
	}
	for _, a := range m.Cc {
		cc = append(cc, a.Name+"|"+a.Address)
	}
	if strings.Join(to, ",") != "Bob|bob@example.com,Carol|carol@example.com" {
		t.Errorf("to = %q", to)
	}
	if strings.Join(cc, ",") != "Dave|dave@example.com,|broken stuff here" {
		t.Errorf("cc = %q", cc)
	}
}

func TestMalformedAddressListSplitsOutsideQuotes(t *testing.T) {
	m := mailparse.Parse([]byte("From: a@x.test\r\nTo: \"Last, First\" <LF@example.com>; oops g1@example.com, (a, b) c@example.com\r\nSubject: x\r\n\r\nx\r\n"))
	var got []string
	for _, a := range m.To {
		got = append(got, a.Name+"|"+a.Address)
	}
	if want := "Last, First|LF@example.com,|g1@example.com,a, b|c@example.com"; strings.Join(got, ",") != want {
		t.Errorf("to = %q, want %q", strings.Join(got, ","), want)
	}
}

func TestDoubledBracketsSalvaged(t *testing.T) {
	m := mailparse.Parse([]byte("From: a@x.test\r\nBcc: <<b@example.com>>\r\nSubject: x\r\n\r\nx\r\n"))
	if len(m.Bcc) != 1 || m.Bcc[0].Address != "b@example.com" {
		t.Fatalf("bcc = %+v", m.Bcc)
	}
}
