package mailpit_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"
)

// The conformance corpus and the collector shared by the recorder (run
// against a real Mailpit) and the conformance test (run against ours):
// the same messages over SMTP, the same requests, the answers normalised
// (ids become message names, receipt times and generated Message-IDs
// placeholders) into one JSON document.

type corpusMsg struct {
	name string
	raw  []byte
	from string
	to   []string
	user string // SMTP AUTH user, "" for none
}

// envelopes names the recipients of our own messages where the headers do
// not say them all.
func envelopes() map[string][]string {
	return map[string][]string{
		"bcc-only.eml": {"hidden1@example.test", "hidden2@example.test"},
		"reply-to.eml": {"customer@example.test", "manager@example.test", "audit@example.test", "secret@example.test"},
	}
}

// loadCorpus reads testdata/conformance/*.eml, then the shared MIME corpus.
func loadCorpus(t testing.TB) []corpusMsg {
	t.Helper()
	var out []corpusMsg
	own, _ := filepath.Glob("testdata/conformance/*.eml")
	shared, _ := filepath.Glob("../../../shared/mime-corpus/msg_*.txt")
	if len(shared) == 0 {
		// Skips (fails in CI): the conformance answers were recorded with it.
		need.Skip(t, need.Corpus, "no msg_*.txt in ../shared/mime-corpus beside the checkout")
	}
	sort.Strings(own)
	sort.Strings(shared)
	env := envelopes()
	for _, f := range append(own, shared...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// SMTP carries lines ending in CRLF.
		raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		m := corpusMsg{name: filepath.Base(f), raw: raw, from: "sender@example.test"}
		if to, ok := env[m.name]; ok {
			m.to = to
		} else if pm, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
			for _, h := range []string{"To", "Cc"} {
				list, _ := pm.Header.AddressList(h)
				for _, a := range list {
					m.to = append(m.to, a.Address)
				}
			}
		}
		if len(m.to) == 0 {
			m.to = []string{"catchall@example.test"}
		}
		if m.name == "auth-user.eml" {
			m.user = "alice"
		}
		out = append(out, m)
	}
	return out
}

// smtpSend delivers m and returns the id named in the 250 reply.
func smtpSend(t testing.TB, addr string, m corpusMsg) (id, reply string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	read := func() string {
		var last string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: read reply: %v", m.name, err)
			}
			last = strings.TrimRight(l, "\r\n")
			if len(last) < 4 || last[3] != '-' {
				return last
			}
		}
	}
	cmd := func(line, want string) string {
		if line != "" {
			fmt.Fprintf(c, "%s\r\n", line)
		}
		got := read()
		if !strings.HasPrefix(got, want) {
			t.Fatalf("%s: %q answered %q, want %s", m.name, line, got, want)
		}
		return got
	}
	cmd("", "220")
	cmd("EHLO client.example.test", "250")
	if m.user != "" {
		cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+m.user+"\x00secret")), "235")
	}
	cmd("MAIL FROM:<"+m.from+">", "250")
	for _, rc := range m.to {
		cmd("RCPT TO:<"+rc+">", "250")
	}
	cmd("DATA", "354")
	defer func() {
		if id == "" {
			fmt.Fprintf(c, "QUIT\r\n")
		}
	}()
	body := m.raw
	if !bytes.HasSuffix(body, []byte("\r\n")) {
		body = append(body, '\r', '\n')
	}
	// Dot-stuffing.
	body = bytes.ReplaceAll(body, []byte("\r\n."), []byte("\r\n.."))
	if bytes.HasPrefix(body, []byte(".")) {
		body = append([]byte("."), body...)
	}
	c.Write(body)
	fmt.Fprintf(c, ".\r\n")
	reply = read()
	if !strings.HasPrefix(reply, "250") {
		return "", reply
	}
	cmd("QUIT", "221")
	mt := regexp.MustCompile(`^250 2\.0\.0 Ok: queued as (\S+)$`).FindStringSubmatch(reply)
	if mt == nil {
		t.Fatalf("%s: DATA reply %q does not name the id as Mailpit's does", m.name, reply)
	}
	return mt[1], reply
}

// searchQueries exercise every part of Mailpit's search syntax.
func searchQueries() []string {
	return []string{
		`order`, `"order 123"`, `subject:"order 123"`, `-subject:order`, `!subject:order`, `SUBJECT:Newsletter`,
		`to:reader@example.test`, `from:news`, `cc:carol`, `bcc:hidden1`, `reply-to:help`, `addressed:manager`,
		`message-id:x-tags@example.test`, `tag:alpha`, `-tag:alpha`, `is:tagged`, `-is:tagged`, `is:read`, `is:unread`,
		`has:attachment`, `-has:attachment`, `has:inline`, `!has:inline`, `larger:3K`, `smaller:1K`, `larger:100K`,
		`after:2020-01-01`, `before:2020-01-01`, `after:2099-01-01`, `"before:2099-01-01 00:00"`,
		`from:news subject:newsletter`, `order -from:support`, `subject:"order 123" is:unread`, `zoë`, `köln`,
		`"Grüße"`, `unsubscribe`, `-x`, `!`, `larger:abc`,
	}
}

// errorCase is a request whose answer (status, and body where exact)
// is compared.
type errorCase struct {
	label, method, path, body string
}

func errorCases(anyID string) []errorCase {
	return []errorCase{
		{"search without query", "GET", "/api/v1/search", ""},
		{"search empty query", "GET", "/api/v1/search?query=", ""},
		{"delete search without query", "DELETE", "/api/v1/search", ""},
		{"put bad json", "PUT", "/api/v1/messages", `{bad`},
		{"put ids and search", "PUT", "/api/v1/messages", `{"IDs":["x"],"Search":"order","Read":true}`},
		{"put wrong type", "PUT", "/api/v1/messages", `{"Read":"yes"}`},
		{"put empty body", "PUT", "/api/v1/messages", ``},
		{"send bad json", "POST", "/api/v1/send", `{bad`},
		{"send no from", "POST", "/api/v1/send", `{}`},
		{"send no recipients", "POST", "/api/v1/send", `{"From":{"Email":"a@example.test"}}`},
		{"send to as strings", "POST", "/api/v1/send", `{"From":{"Email":"a@example.test"},"To":["b@example.test"]}`},
		{"unknown message", "GET", "/api/v1/message/ZZZZZZZZZZZZZZZZZZZZZZ", ""},
		{"unknown message headers", "GET", "/api/v1/message/ZZZZZZZZZZZZZZZZZZZZZZ/headers", ""},
		{"unknown message raw", "GET", "/api/v1/message/ZZZZZZZZZZZZZZZZZZZZZZ/raw", ""},
		{"latest no match", "GET", "/api/v1/message/latest?query=nothing-matches-this", ""},
		{"view unknown", "GET", "/view/ZZZZZZZZZZZZZZZZZZZZZZ.txt", ""},
		{"unknown part", "GET", "/api/v1/message/" + anyID + "/part/99", ""},
		{"release without relay", "POST", "/api/v1/message/" + anyID + "/release", `{"To":["x@example.test"]}`},
	}
}

type collector struct {
	t     testing.TB
	base  string
	names map[string]string // id → message name
	out   map[string]any
}

func (c *collector) do(method, path, body string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// norm decodes a JSON answer and replaces ids, receipt times and
// generated Message-IDs with stable placeholders.
func (c *collector) norm(b []byte) any {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return map[string]any{"unparsable": string(b)}
	}
	return c.walk(v, "")
}

func (c *collector) walk(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = c.walk(e, k)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = c.walk(e, key)
		}
		return x
	case string:
		if n, ok := c.names[x]; ok {
			return "<id:" + n + ">"
		}
		switch {
		case key == "Created":
			return "<created>"
		case key == "MessageID" && (strings.HasSuffix(x, "@mailpit") || strings.HasSuffix(x, "@mailsandbox")):
			return "<generated>"
		}
	}
	return v
}

func (c *collector) getJSON(path string) any {
	code, _, b := c.do("GET", path, "")
	if code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return c.norm(b)
}

// matches is a search or list answer reduced to counts and message names.
func (c *collector) matches(path string) map[string]any {
	code, _, b := c.do("GET", path, "")
	res := map[string]any{"status": code}
	if code != http.StatusOK {
		res["body"] = strings.TrimSpace(string(b))
		return res
	}
	var l struct {
		Total          int                   `json:"total"`
		Unread         int                   `json:"unread"`
		Count          int                   `json:"count"`
		MessagesCount  int                   `json:"messages_count"`
		MessagesUnread int                   `json:"messages_unread"`
		Start          int                   `json:"start"`
		Messages       []struct{ ID string } `json:"messages"`
	}
	json.Unmarshal(b, &l)
	names := []string{}
	for _, m := range l.Messages {
		names = append(names, c.names[m.ID])
	}
	res["total"], res["unread"], res["count"], res["messages_count"], res["messages_unread"], res["start"], res["names"] =
		l.Total, l.Unread, l.Count, l.MessagesCount, l.MessagesUnread, l.Start, names
	return res
}

// collect runs the whole conversation against a fresh server. Messages
// named in skip are not sent.
func collect(t testing.TB, smtpAddr, base string, skip map[string]bool) map[string]any {
	c := &collector{t: t, base: base, names: map[string]string{}, out: map[string]any{}}
	var msgs []corpusMsg
	ids := map[string]string{}
	for _, m := range loadCorpus(t) {
		if skip[m.name] {
			continue
		}
		id, reply := smtpSend(t, smtpAddr, m)
		if id == "" {
			c.out["smtp refused "+m.name] = reply
			continue
		}
		msgs = append(msgs, m)
		ids[m.name], c.names[id] = id, m.name
		c.out["smtp_reply"] = strings.Replace(reply, id, "<ID>", 1)
	}
	// Receipt times, to recognise a Date that is the receipt time (a
	// message without a Date header).
	createdAt := map[string]time.Time{}
	_, _, lb := c.do("GET", "/api/v1/messages?limit=100", "")
	var raw struct {
		Messages []struct {
			ID      string
			Created time.Time
		} `json:"messages"`
	}
	json.Unmarshal(lb, &raw)
	for _, m := range raw.Messages {
		createdAt[m.ID] = m.Created
	}
	c.out["list"] = c.getJSON("/api/v1/messages?limit=100")
	c.out["list_page"] = c.matches("/api/v1/messages?start=2&limit=3")
	for _, q := range searchQueries() {
		c.out["search "+q] = c.matches("/api/v1/search?limit=100&query=" + url.QueryEscape(q))
	}
	c.out["search tz"] = c.matches("/api/v1/search?limit=100&tz=Europe/Berlin&query=" + url.QueryEscape("after:2020-01-01"))
	code, _, b := c.do("GET", "/api/v1/message/latest?query="+url.QueryEscape(`subject:"inline image"`), "")
	c.out["latest query"] = map[string]any{"status": code, "body": c.norm(b)}
	for _, m := range msgs {
		id := ids[m.name]
		c.out["message "+m.name] = c.getJSON("/api/v1/message/" + id)
		if msg, ok := c.out["message "+m.name].(map[string]any); ok {
			if d, err := time.Parse(time.RFC3339Nano, fmt.Sprint(msg["Date"])); err == nil && d.Sub(createdAt[id]).Abs() < 2*time.Second {
				msg["Date"] = "<received>"
			}
		}
		c.out["headers "+m.name] = c.getJSON("/api/v1/message/" + id + "/headers")
		code, h, b := c.do("GET", "/view/"+id+".txt", "")
		c.out["view txt "+m.name] = map[string]any{"status": code, "type": h.Get("Content-Type"), "body": string(b)}
		code, h, _ = c.do("GET", "/view/"+id+".html", "")
		c.out["view html "+m.name] = map[string]any{"status": code, "type": h.Get("Content-Type")}
		msg, _ := c.out["message "+m.name].(map[string]any)
		for _, kind := range []string{"Inline", "Attachments"} {
			parts, _ := msg[kind].([]any)
			for _, p := range parts {
				pid, _ := p.(map[string]any)["PartID"].(string)
				code, h, b := c.do("GET", "/api/v1/message/"+id+"/part/"+pid, "")
				sum := sha256.Sum256(b)
				c.out["part "+m.name+" "+pid] = map[string]any{"status": code, "type": h.Get("Content-Type"), "sha256": hex.EncodeToString(sum[:])}
				code, h, b = c.do("GET", "/api/v1/message/"+id+"/part/"+pid+"/thumb", "")
				th := map[string]any{"status": code, "type": h.Get("Content-Type")}
				if code == http.StatusOK {
					if img, err := jpeg.Decode(bytes.NewReader(b)); err == nil {
						th["size"] = fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy())
					}
				}
				c.out["thumb "+m.name+" "+pid] = th
			}
		}
	}
	c.out["after reading"] = c.matches("/api/v1/search?limit=100&query=is:unread")
	put := func(label, body string) {
		code, h, b := c.do("PUT", "/api/v1/messages", body)
		c.out["put "+label] = map[string]any{"status": code, "type": h.Get("Content-Type"), "body": string(b),
			"after": c.matches("/api/v1/search?limit=100&query=is:unread")}
	}
	put("ids unread", fmt.Sprintf(`{"IDs":[%q,%q],"Read":false}`, ids["attachments.eml"], ids["x-tags.eml"]))
	put("unknown id", `{"IDs":["ZZZZZZZZZZZZZZZZZZZZZZ"],"Read":false}`)
	put("search unread", `{"Search":"subject:order","Read":false}`)
	put("all read", `{"Read":true}`)
	put("all unread", `{"Read":false}`)
	for _, e := range errorCases(ids["attachments.eml"]) {
		code, h, b := c.do(e.method, e.path, e.body)
		c.out["error "+e.label] = map[string]any{"status": code, "type": h.Get("Content-Type"), "body": strings.TrimSpace(string(b))}
	}
	code, _, b = c.do("POST", "/api/v1/send", `{"From":{"Email":"api@example.test","Name":"Äpi"},"To":[{"Email":"to@example.test","Name":"To"}],`+
		`"Cc":[{"Email":"cc@example.test"}],"Bcc":["bcc@example.test"],"ReplyTo":[{"Email":"reply@example.test"}],"Subject":"Sent über the API",`+
		`"Text":"text body","HTML":"<p>html <img src=\"cid:pic\"></p>","Headers":{"X-Custom":"yes"},"Tags":["api"],`+
		`"Attachments":[{"Content":"aGVsbG8=","Filename":"hello.txt"},{"Content":"aGVsbG8=","Filename":"pic.png","ContentType":"image/png","ContentID":"pic"}]}`)
	var sent struct{ ID string }
	json.Unmarshal(b, &sent)
	c.names[sent.ID] = "sent"
	c.out["send"] = map[string]any{"status": code, "body": c.norm(b)}
	if sent.ID != "" {
		c.out["message sent"] = c.getJSON("/api/v1/message/" + sent.ID)
	}
	code, h, b := c.do("DELETE", "/api/v1/search?query="+url.QueryEscape("from:spam"), "")
	c.out["delete search"] = map[string]any{"status": code, "type": h.Get("Content-Type"), "body": string(b),
		"after": c.matches("/api/v1/messages?limit=100")}
	// Tags: Mailpit's tag routes, each answer with the state after it.
	tagState := func(res map[string]any) map[string]any {
		res["all"] = c.getJSON("/api/v1/tags")
		for _, n := range []string{"x-tags.eml", "attachments.eml"} {
			if m, ok := c.getJSON("/api/v1/message/" + ids[n]).(map[string]any); ok {
				res[n] = m["Tags"]
			}
		}
		res["tagged"] = c.matches("/api/v1/search?limit=100&query=is:tagged")
		return res
	}
	tagStep := func(label, method, path, body string) {
		code, h, b := c.do(method, path, body)
		c.out[label] = tagState(map[string]any{"status": code, "type": h.Get("Content-Type"), "body": strings.TrimSpace(string(b))})
	}
	tagStep("tags list", "GET", "/api/v1/tags", "")
	tagStep("tags set", "PUT", "/api/v1/tags", fmt.Sprintf(`{"IDs":[%q,%q],"Tags":["New","ALPHA","bad/tag",""," x\u0001y "]}`, ids["attachments.eml"], ids["x-tags.eml"]))
	tagStep("tags rename", "PUT", "/api/v1/tags/new", `{"Name":"Renamed"}`)
	tagStep("tags rename case", "PUT", "/api/v1/tags/RENAMED", `{"Name":"re/named"}`)
	tagStep("tags rename escaped", "PUT", "/api/v1/tags/x%20y", `{"Name":"x-y"}`)
	tagStep("tags rename missing", "PUT", "/api/v1/tags/missing", `{"Name":"x"}`)
	tagStep("tags rename empty", "PUT", "/api/v1/tags/alpha", `{"Name":""}`)
	tagStep("tags rename onto existing", "PUT", "/api/v1/tags/alpha", `{"Name":"Beta"}`)
	tagStep("error tags set garbage", "PUT", "/api/v1/tags", `garbage`)
	tagStep("error tags rename garbage", "PUT", "/api/v1/tags/alpha", `x`)
	tagStep("tags delete missing", "DELETE", "/api/v1/tags/nothing", "")
	tagStep("tags delete", "DELETE", "/api/v1/tags/BETA", "")
	tagStep("tags clear", "PUT", "/api/v1/tags", fmt.Sprintf(`{"IDs":[%q],"Tags":[]}`, ids["attachments.eml"]))
	tagStep("tags search", "GET", "/api/v1/search?query="+url.QueryEscape("tag:alpha"), "")
	webui := c.getJSON("/api/v1/webui")
	c.out["webui"] = webui
	info := c.getJSON("/api/v1/info").(map[string]any)
	keys := []string{}
	for k := range info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c.out["info keys"] = keys
	for _, p := range []string{"/livez", "/readyz"} {
		code, _, _ := c.do("GET", p, "")
		c.out["health "+p] = code
	}
	return c.out
}
