package faultsapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

type env struct {
	t    *testing.T
	base string
	smtp string
}

func start(t *testing.T, change func(*sandbox.Config)) *env {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.SMTPAddr, cfg.HTTPAddr, cfg.POP3Addr, cfg.IMAPAddr = "127.0.0.1:0", "127.0.0.1:0", "", ""
	if change != nil {
		change(&cfg)
	}
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return &env{t: t, base: "http://" + sb.HTTPAddr(), smtp: sb.SMTPAddr()}
}

// call sends a request and returns the status and body.
func (e *env) call(method, path, body string) (int, string, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (e *env) want(method, path, body string, status int) string {
	e.t.Helper()
	got, b, _ := e.call(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, got, b, status)
	}
	return b
}

func (e *env) send(from string, to ...string) error {
	return smtp.SendMail(e.smtp, nil, from, to, []byte("Subject: x\r\n\r\nhi\r\n"))
}

func TestNativeRules(t *testing.T) {
	e := start(t, nil)
	body := e.want("POST", "/api/v1/faults", `{"stage":"rcpt","to":"*@bounce.test","reply":"550 5.1.1 No such user"}`, 201)
	var rule struct {
		ID   string `json:"id"`
		Hits int    `json:"hits"`
	}
	if err := json.Unmarshal([]byte(body), &rule); err != nil || rule.ID == "" {
		t.Fatalf("%s %v", body, err)
	}
	err := e.send("app@example.com", "x@bounce.test")
	if err == nil || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "5.1.1 No such user") {
		t.Fatalf("send: %v", err)
	}
	if err := e.send("app@example.com", "ok@example.com"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Enabled bool `json:"enabled"`
		Faults  []struct {
			ID   string `json:"id"`
			Hits int    `json:"hits"`
		} `json:"faults"`
	}
	json.Unmarshal([]byte(e.want("GET", "/api/v1/faults", "", 200)), &list)
	if !list.Enabled || len(list.Faults) != 1 || list.Faults[0].Hits != 1 {
		t.Fatalf("%+v", list)
	}
	// The switch turns every rule off and keeps them.
	e.want("PUT", "/api/v1/faults/enabled", `{"enabled":false}`, 200)
	if err := e.send("app@example.com", "x@bounce.test"); err != nil {
		t.Fatalf("rules off: %v", err)
	}
	e.want("PUT", "/api/v1/faults/enabled", `{"enabled":true}`, 200)
	if b := e.want("GET", "/api/v1/faults/enabled", "", 200); !strings.Contains(b, "true") {
		t.Fatal(b)
	}
	e.want("DELETE", "/api/v1/faults/"+rule.ID, "", 204)
	e.want("DELETE", "/api/v1/faults/"+rule.ID, "", 404)
	if err := e.send("app@example.com", "x@bounce.test"); err != nil {
		t.Fatalf("removed rule still refuses: %v", err)
	}
	e.want("POST", "/api/v1/faults", `{"stage":"mail","reply":"451 4.7.1 later"}`, 201)
	e.want("POST", "/api/v1/faults", `{"stage":"mail","delay":"1ms"}`, 201)
	e.want("DELETE", "/api/v1/faults", "", 204)
	if b := e.want("GET", "/api/v1/faults", "", 200); !strings.Contains(b, `"faults":[]`) {
		t.Fatal(b)
	}
}

func TestBadRulesAre400NamingTheField(t *testing.T) {
	e := start(t, nil)
	for _, c := range []struct{ body, field string }{
		{`{"stage":"quit","reply":"451 x"}`, "stage"},
		{`{"stage":"mail","reply":"700 x"}`, "reply"},
		{`{"stage":"mail","reply":"250 ok"}`, "reply"},
		{`{"stage":"rcpt","to":"[abc","reply":"451 x"}`, "to"},
		{`{"stage":"mail","delay":"-3s"}`, "delay"},
		{`{"stage":"mail","delay":"soon"}`, "delay"},
		{`{"stage":"mail","probability":"high","reply":"451 x"}`, "probability"},
		{`{"stage":"mail","rate":{"messages":0,"per":"1m"}}`, "rate.messages"},
		{`{"stage":"mail","colour":"red"}`, "colour"},
		{`[1,2]`, "JSON object"},
	} {
		code, b, _ := e.call("POST", "/api/v1/faults", c.body)
		if code != 400 || !strings.Contains(b, c.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, code, b, c.field)
		}
	}
	if code, b, _ := e.call("PUT", "/api/v1/faults/enabled", `{"on":1}`); code != 400 {
		t.Errorf("switch: %d %s", code, b)
	}
	if code, b, _ := e.call("GET", "/api/v1/smtp/sessions?since=yesterday", ""); code != 400 || !strings.Contains(b, "since") {
		t.Errorf("since: %d %s", code, b)
	}
}

func TestSessionsRoute(t *testing.T) {
	e := start(t, nil)
	before := time.Now().UTC()
	e.want("POST", "/api/v1/faults", `{"stage":"rcpt","to":"grey@*","greylist":"10m"}`, 201)
	if err := e.send("app@example.com", "grey@example.com"); err == nil {
		t.Fatal("greylisted send accepted")
	}
	if err := e.send("other@example.com", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Sessions []struct {
			Client string   `json:"client"`
			From   []string `json:"from"`
			Faults int      `json:"faults"`
			Lines  []struct {
				Dir, Text string
				Fault     bool
			} `json:"lines"`
		} `json:"sessions"`
	}
	q := url.Values{"to": {"grey@"}, "since": {before.Format(time.RFC3339Nano)}}
	json.Unmarshal([]byte(e.want("GET", "/api/v1/smtp/sessions?"+q.Encode(), "", 200)), &out)
	if len(out.Sessions) != 1 || out.Sessions[0].Faults != 1 || !strings.HasPrefix(out.Sessions[0].Client, "127.0.0.1:") {
		t.Fatalf("%+v", out)
	}
	marked := false
	for _, l := range out.Sessions[0].Lines {
		if l.Fault && strings.HasPrefix(l.Text, "451 4.7.1") {
			marked = true
		}
	}
	if !marked {
		t.Fatalf("451 not marked: %+v", out.Sessions[0].Lines)
	}
	json.Unmarshal([]byte(e.want("GET", "/api/v1/smtp/sessions?from=other@", "", 200)), &out)
	if len(out.Sessions) != 1 || out.Sessions[0].From[0] != "other@example.com" {
		t.Fatalf("%+v", out)
	}
	json.Unmarshal([]byte(e.want("GET", "/api/v1/smtp/sessions?since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), "", 200)), &out)
	if len(out.Sessions) != 0 {
		t.Fatalf("future since: %+v", out)
	}
	off := start(t, func(c *sandbox.Config) { c.Faults.SMTPLogSessions = 0 })
	off.want("GET", "/api/v1/smtp/sessions", "", 404)
}

func TestMailpitChaos(t *testing.T) {
	off := start(t, nil)
	for _, m := range []string{"GET", "PUT"} {
		code, b, h := off.call(m, "/api/v1/chaos", `{}`)
		if code != 400 || strings.TrimSpace(b) != "Chaos is not enabled" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Fatalf("%s while disabled: %d %q %s", m, code, b, h.Get("Content-Type"))
		}
	}
	e := start(t, func(c *sandbox.Config) { c.Faults.EnableChaos = true })
	b := e.want("GET", "/api/v1/chaos", "", 200)
	want := `{"Sender":{"ErrorCode":451,"Probability":0},"Recipient":{"ErrorCode":451,"Probability":0},"Authentication":{"ErrorCode":535,"Probability":0}}`
	if strings.TrimSpace(b) != want {
		t.Fatalf("defaults %s", b)
	}
	b = e.want("PUT", "/api/v1/chaos", `{"Recipient":{"ErrorCode":550,"Probability":100}}`, 200)
	if !strings.Contains(b, `"Recipient":{"ErrorCode":550,"Probability":100}`) || !strings.Contains(b, `"Sender":{"ErrorCode":451,"Probability":0}`) {
		t.Fatalf("put %s", b)
	}
	if err := e.send("a@example.com", "b@example.com"); err == nil || !strings.Contains(err.Error(), `550 "Chaos recipient error"`) {
		t.Fatalf("send: %v", err)
	}
	// The chaos shows among the native rules, and omitted triggers reset.
	if b := e.want("GET", "/api/v1/faults", "", 200); !strings.Contains(b, `"origin":"chaos"`) {
		t.Fatal(b)
	}
	e.want("PUT", "/api/v1/chaos", `{}`, 200)
	if err := e.send("a@example.com", "b@example.com"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	for _, body := range []string{`{"Sender":{"ErrorCode":200,"Probability":5}}`, `{"Sender":{"ErrorCode":451,"Probability":101}}`, `{"Sender":1}`} {
		if code, b, _ := e.call("PUT", "/api/v1/chaos", body); code != 400 || b == "" {
			t.Errorf("%s: %d %s", body, code, b)
		}
	}
	trig := start(t, func(c *sandbox.Config) { c.Faults.ChaosTriggers = "Sender:452:100" })
	if err := trig.send("a@example.com", "b@example.com"); err == nil || !strings.Contains(err.Error(), `452 "Chaos sender error"`) {
		t.Fatalf("--chaos-triggers: %v", err)
	}
}

func TestMailHogJim(t *testing.T) {
	e := start(t, nil)
	e.want("GET", "/api/v2/jim", "", 404)
	e.want("PUT", "/api/v2/jim", `{}`, 404)
	e.want("DELETE", "/api/v2/jim", "", 404)
	e.want("POST", "/api/v2/jim", `{"AcceptChance":1,"DisconnectChance":0,"LinkSpeedAffect":0,"RejectSenderChance":1,"RejectRecipientChance":0,"RejectAuthChance":0}`, 201)
	e.want("POST", "/api/v2/jim", ``, 400)
	var j map[string]float64
	json.Unmarshal([]byte(e.want("GET", "/api/v2/jim", "", 200)), &j)
	if j["RejectSenderChance"] != 1 || j["LinkSpeedMin"] != 0 || len(j) != 8 {
		t.Fatalf("%v", j)
	}
	if err := e.send("a@example.com", "b@example.com"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("send: %v", err)
	}
	// PUT replaces Jim whole, as MailHog does: omitted fields are 0.
	e.want("PUT", "/api/v2/jim", `{"AcceptChance":1,"RejectRecipientChance":1}`, 200)
	json.Unmarshal([]byte(e.want("GET", "/api/v2/jim", "", 200)), &j)
	if j["RejectSenderChance"] != 0 || j["LinkSpeedMin"] != 0 || j["RejectRecipientChance"] != 1 {
		t.Fatalf("%v", j)
	}
	if err := e.send("a@example.com", "b@example.com"); err == nil || !strings.Contains(err.Error(), "Recipient rejected") {
		t.Fatalf("send: %v", err)
	}
	e.want("PUT", "/api/v2/jim", `{"AcceptChance":`, 400)
	if code, b, _ := e.call("PUT", "/api/v2/jim", `{"AcceptChance":1.5}`); code != 400 || !strings.Contains(b, "AcceptChance") {
		t.Fatalf("%d %s", code, b)
	}
	e.want("DELETE", "/api/v2/jim", "", 200)
	e.want("GET", "/api/v2/jim", "", 404)
	if err := e.send("a@example.com", "b@example.com"); err != nil {
		t.Fatalf("jim gone: %v", err)
	}
	e.want("PUT", "/api/v2/jim", `nonsense`, 404)
	// Defaults on an empty POST are MailHog's.
	e.want("POST", "/api/v2/jim", "", 201)
	json.Unmarshal([]byte(e.want("GET", "/api/v2/jim", "", 200)), &j)
	if j["AcceptChance"] != 0.99 || j["DisconnectChance"] != 0.005 || j["LinkSpeedMax"] != 10240 {
		t.Fatalf("%v", j)
	}
}
