package mailhog_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// TestMatchesMailHogReference sends testdata/*.eml over SMTP with the
// envelopes MailHog's reference run used, then asks every query of
// testdata/queries.json and compares the answer, field by field, with
// testdata/reference.json: what MailHog v1.0.1's own data and storage code
// produce for the same messages (see testdata/reference/main.go). Ids,
// times, HELO and MailHog's Received line are the only values normalised.
func TestMatchesMailHogReference(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { checkReference(t, sandboxtest.New(t)) })
	t.Run("postgres", func(t *testing.T) {
		checkReference(t, sandboxtest.New(t, sandboxtest.WithDB(storetest.PostgresDSN(t))))
	})
}

func checkReference(t *testing.T, sb *sandboxtest.Sandbox) {
	var envs []struct {
		File, From string
		To         []string
	}
	readJSON(t, "testdata/envelopes.json", &envs)
	for _, e := range envs {
		raw, err := os.ReadFile(filepath.Join("testdata", e.File))
		if err != nil {
			t.Fatal(err)
		}
		if err := smtp.SendMail(sb.SMTPAddr(), nil, e.From, e.To, raw); err != nil {
			t.Fatalf("send %s: %v", e.File, err)
		}
	}
	var queries []struct{ Name, Path string }
	readJSON(t, "testdata/queries.json", &queries)
	var ref map[string]json.RawMessage
	readJSON(t, "testdata/reference.json", &ref)
	for _, q := range queries {
		t.Run(q.Name, func(t *testing.T) {
			res, err := http.Get(sb.URL() + q.Path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/json" {
				t.Fatalf("%s: %d %s %.300s", q.Path, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			want, got := normalise(t, ref[q.Name]), normalise(t, body)
			if !reflect.DeepEqual(want, got) {
				wb, _ := json.MarshalIndent(want, "", " ")
				gb, _ := json.MarshalIndent(got, "", " ")
				t.Fatalf("%s differs from MailHog's answer\n--- MailHog\n%s\n--- sandbox\n%s", q.Path, wb, gb)
			}
			checkKeyOrder(t, body)
		})
	}
}

// normalise decodes a v2 list and replaces what differs by nature: each
// item's id (wherever it appears: MailHog puts it in Message-ID when a
// message has none), its time, the HELO name and MailHog's Received line.
func normalise(t *testing.T, b []byte) any {
	t.Helper()
	var v struct {
		Total, Count, Start int
		Items               []json.RawMessage
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %.200s: %v", b, err)
	}
	items := []any{}
	for _, it := range v.Items {
		var head struct {
			ID      string
			Created time.Time
		}
		if err := json.Unmarshal(it, &head); err != nil || head.ID == "" || head.Created.IsZero() {
			t.Fatalf("item without ID or Created: %.300s (%v)", it, err)
		}
		it = bytes.ReplaceAll(it, []byte(head.ID), []byte("<ID>"))
		var m map[string]any
		if err := json.Unmarshal(it, &m); err != nil {
			t.Fatal(err)
		}
		m["Created"] = "<time>"
		m["Raw"].(map[string]any)["Helo"] = "<helo>"
		delete(m["Content"].(map[string]any)["Headers"].(map[string]any), "Received")
		items = append(items, m)
	}
	return map[string]any{"total": v.Total, "count": v.Count, "start": v.Start, "items": items}
}

// checkKeyOrder: clients decode into MailHog's structs by name, but some
// compare serialised answers; keep MailHog's field order.
func checkKeyOrder(t *testing.T, body []byte) {
	t.Helper()
	var order []string
	dec := json.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			continue
		}
		if s, ok := tok.(string); ok && depth == 1 && len(order) < 4 {
			order = append(order, s)
			skipValue(dec)
		}
	}
	if strings.Join(order, ",") != "total,count,start,items" {
		t.Errorf("envelope key order %v", order)
	}
	if i := bytes.Index(body, []byte(`{"ID":`)); i >= 0 {
		var keys []string
		d := json.NewDecoder(bytes.NewReader(body[i:]))
		d.Token()
		for d.More() {
			k, _ := d.Token()
			keys = append(keys, k.(string))
			skipValue(d)
		}
		if strings.Join(keys, ",") != "ID,From,To,Content,Created,MIME,Raw" {
			t.Errorf("message key order %v", keys)
		}
	}
}

func skipValue(d *json.Decoder) {
	var v json.RawMessage
	d.Decode(&v)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestSearchRefusesBadInput: another kind, or no query, is a 400 with a
// reason (MailHog sends a bare 400), and the store is untouched.
func TestSearchRefusesBadInput(t *testing.T) {
	sb := sandboxtest.New(t)
	if err := smtp.SendMail(sb.SMTPAddr(), nil, "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"?kind=subject&query=x", "?kind=&query=x", "?query=x", "?kind=from", "?kind=FROM&query=a"} {
		res, err := http.Get(sb.URL() + "/api/v2/search" + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || len(b) == 0 {
			t.Errorf("%s: %d %q, want 400 with a reason", p, res.StatusCode, b)
		}
	}
	res, err := http.Get(sb.URL() + "/api/v2/messages?limit=-3&start=junk")
	if err != nil {
		t.Fatal(err)
	}
	var l struct{ Total, Count int }
	json.NewDecoder(res.Body).Decode(&l)
	res.Body.Close()
	if res.StatusCode != 200 || l.Total != 1 || l.Count != 1 {
		t.Fatalf("bad paging is MailHog's defaults: %d %+v", res.StatusCode, l)
	}
}

// TestMailHogDeletes: MailHog's clients delete with DELETE /api/v1/messages
// and /api/v1/messages/{id} and check for 200; those paths are the native
// routes, which answer so.
func TestMailHogDeletes(t *testing.T) {
	sb := sandboxtest.New(t)
	for i := 0; i < 3; i++ {
		if err := smtp.SendMail(sb.SMTPAddr(), nil, "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	list := func() (ids []string) {
		res, err := http.Get(sb.URL() + "/api/v2/messages")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var l struct{ Items []struct{ ID string } }
		json.NewDecoder(res.Body).Decode(&l)
		for _, it := range l.Items {
			ids = append(ids, it.ID)
		}
		return ids
	}
	del := func(path string) {
		req, _ := http.NewRequest(http.MethodDelete, sb.URL()+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("DELETE %s: %d, want 200", path, res.StatusCode)
		}
	}
	ids := list()
	del("/api/v1/messages/" + ids[0])
	if got := list(); len(got) != 2 || got[0] == ids[0] {
		t.Fatalf("after deleting one: %v", got)
	}
	del("/api/v1/messages")
	if got := list(); len(got) != 0 {
		t.Fatalf("after deleting all: %v", got)
	}
}
