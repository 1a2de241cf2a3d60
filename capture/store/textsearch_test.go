package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestBodySearchEveryForm checks body search over each way a body's text
// can be kept: a span of the raw message (plain ASCII sent as is, alone or
// as one part of several) or a lower-cased copy (non-ASCII, encoded, HTML).
// Each needle must find exactly its message, in any letter case, and
// nothing outside the text (headers, other parts) may match.
func TestBodySearchEveryForm(t *testing.T) { backends(t, testBodySearchEveryForm) }

func testBodySearchEveryForm(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	long := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 2000)
	msgs := map[string]string{
		"plain": "From: a@x.test\r\nTo: r@x.test\r\nSubject: one\r\nX-Header-Only: HeaderNeedle\r\n\r\n" +
			long + "The Plain Needle Sits Here.\r\n",
		"multipart": "From: a@x.test\r\nTo: r@x.test\r\nSubject: two\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n" +
			"Hello, the MultiPart Needle.\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\nAttachmentNeedle\r\n--b1--\r\n",
		"qp": "From: a@x.test\r\nTo: r@x.test\r\nSubject: three\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"Soft=\r\nBroken Needle and Gr=C3=9C=C3=9FE\r\n",
		"latin1": "From: a@x.test\r\nTo: r@x.test\r\nSubject: four\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
			"Caf\xc9 Needle\r\n",
		"html": "From: a@x.test\r\nTo: r@x.test\r\nSubject: five\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/html\r\n\r\n<p>Html <b>Bold</b> Needle</p><p>Next&nbsp;one</p>\r\n",
	}
	ids := map[string]string{}
	for name, raw := range msgs {
		id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"r@x.test"}}, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	for _, c := range []struct {
		needle, want string
	}{
		{"plain needle sits", "plain"},
		{"PLAIN NEEDLE", "plain"},
		{"lorem ipsum", "plain"},
		{"multipart needle", "multipart"},
		{"softbroken needle", "qp"},
		{"grüße", "qp"},
		{"GRÜSSE", ""}, // ß does not fold to ss
		{"café needle", "latin1"},
		{"CAFÉ", "latin1"},
		{"html bold needle", "html"}, // inline tags join their text
		{"needle next one", "html"},  // blocks and entities become one space
		{"<b>", ""},                  // markup is not text
		{"headerneedle", ""},
		{"attachmentneedle", ""},
		{"needle sits here.\r\n", "plain"},
	} {
		list, total, err := st.Search(ctx, store.Query{Text: c.needle})
		if err != nil {
			t.Fatalf("%q: %v", c.needle, err)
		}
		if c.want == "" {
			if total != 0 {
				t.Errorf("%q found %d messages, want none", c.needle, total)
			}
			continue
		}
		if total != 1 || len(list) != 1 || list[0].ID != ids[c.want] {
			t.Errorf("%q found %d (%+v), want only %s", c.needle, total, list, c.want)
		}
	}
}
