// Command mailhogreference prints, as JSON, what MailHog v1.0.1's API v2
// answers for the queries in ../queries.json once the messages in
// ../envelopes.json are received in order. The handlers of
// MailHog-Server/api/v2.go are thin (parse start/limit, call storage,
// marshal {total,count,start,items}); this program calls the same storage
// (mailhog/storage InMemory) on messages parsed by the same code
// (mailhog/data SMTPMessage.Parse), as MailHog's SMTP server hands them
// over (DATA without its final CRLF, HELO "localhost" as Go's net/smtp
// sends it).
package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mailhog/data"
	"github.com/mailhog/storage"
)

type result struct {
	Total int            `json:"total"`
	Count int            `json:"count"`
	Start int            `json:"start"`
	Items []data.Message `json:"items"`
}

func startLimit(q url.Values) (int, int) {
	start, limit := 0, 50
	if n, err := strconv.Atoi(q.Get("start")); err == nil && n > 0 {
		start = n
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = min(n, 250)
	}
	return start, limit
}

func main() {
	var envs []struct {
		File string
		From string
		To   []string
	}
	must(json.Unmarshal(read("../envelopes.json"), &envs))
	var queries []struct{ Name, Path string }
	must(json.Unmarshal(read("../queries.json"), &queries))
	st := storage.CreateInMemory()
	for _, e := range envs {
		raw := strings.TrimSuffix(string(read(filepath.Join("..", e.File))), "\r\n")
		m := (&data.SMTPMessage{From: e.From, To: e.To, Data: raw, Helo: "localhost"}).Parse("mailhog.example")
		_, err := st.Store(m)
		must(err)
	}
	out := map[string]result{}
	for _, q := range queries {
		u, err := url.Parse(q.Path)
		must(err)
		start, limit := startLimit(u.Query())
		var res result
		if u.Path == "/api/v2/messages" {
			msgs, err := st.List(start, limit)
			must(err)
			res = result{Total: st.Count(), Count: len(*msgs), Start: start, Items: *msgs}
		} else {
			msgs, total, err := st.Search(u.Query().Get("kind"), u.Query().Get("query"), start, limit)
			must(err)
			res = result{Total: total, Count: len(*msgs), Start: start, Items: *msgs}
		}
		out[q.Name] = res
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	must(enc.Encode(out))
}

func read(p string) []byte {
	b, err := os.ReadFile(p)
	must(err)
	return b
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
