package faults

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"", "anything", true},
		{"*", "", true},
		{"*@bounce.test", "x@bounce.test", true},
		{"*@bounce.test", "X@Bounce.TEST", true},
		{"*@bounce.test", "x@bounce.test.evil", false},
		{"a?c@x", "abc@x", true},
		{"a?c@x", "ac@x", false},
		{"user[0-9]@x", "user7@x", true},
		{"user[!0-9]@x", "user7@x", false},
		{"user[!0-9]@x", "userz@x", true},
		{"*a*b*c", "xxaxxbxxc", true},
		{"*a*b*c", "xxaxxcxxb", false},
		{`lit\*@x`, "lit*@x", true},
		{`lit\*@x`, "litx@x", false},
		{"a/b*", "a/bc", true},
	} {
		g, err := compileGlob(c.pat)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		if got := g.match(c.s); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
	for _, bad := range []string{"[abc", "abc]", `x\`} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}

func fp(v float64) *float64 { return &v }

func TestValidationNamesTheField(t *testing.T) {
	for _, c := range []struct {
		r     Rule
		field string
	}{
		{Rule{Stage: "quit", Reply: "451 x"}, "stage"},
		{Rule{Reply: "451 x"}, "stage"},
		{Rule{Stage: StageMail, Reply: "199 x"}, "reply"},
		{Rule{Stage: StageMail, Reply: "600 x"}, "reply"},
		{Rule{Stage: StageMail, Reply: "250 ok"}, "reply"},
		{Rule{Stage: StageMail, Reply: "354 go"}, "reply"},
		{Rule{Stage: StageMail, Reply: "451 5.7.1 mismatch"}, "reply"},
		{Rule{Stage: StageMail, Reply: "abc"}, "reply"},
		{Rule{Stage: StageMail, From: "[x", Reply: "451 x"}, "from"},
		{Rule{Stage: StageRcpt, To: "a]", Reply: "451 x"}, "to"},
		{Rule{Stage: StageMail, To: "*@x", Reply: "451 x"}, "to"},
		{Rule{Stage: StageConnect, From: "*@x", Reply: "451 x"}, "from"},
		{Rule{Stage: StageMail, Delay: Duration(-time.Second)}, "delay"},
		{Rule{Stage: StageMail, Delay: Duration(11 * time.Minute)}, "delay"},
		{Rule{Stage: StageMail, Greylist: Duration(-1)}, "greylist"},
		{Rule{Stage: StageMail, Probability: fp(1.5), Reply: "451 x"}, "probability"},
		{Rule{Stage: StageMail, Times: -1, Reply: "451 x"}, "times"},
		{Rule{Stage: StageMail, Rate: &Rate{Messages: 0, Per: Duration(time.Minute)}}, "rate.messages"},
		{Rule{Stage: StageMail, Rate: &Rate{Messages: 1}}, "rate.per"},
		{Rule{Stage: StageMail, Bandwidth: -5}, "bandwidth"},
		{Rule{Stage: StageMail}, "reply"},
		{Rule{Stage: StageMail, Reply: "451 x", Disconnect: true}, "reply"},
	} {
		err := Validate(c.r)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: error %v, want one naming %q", c.r, err, c.field)
		}
	}
	if err := Validate(Rule{Stage: StageMessage, Reply: "250 2.0.0 swallowed"}); err != nil {
		t.Errorf("2xx at message: %v", err)
	}
}

func TestReplyParsing(t *testing.T) {
	r, err := ParseReply("451 4.7.1 Try again later")
	if err != nil || r.Code != 451 || r.Enhanced != [3]int{4, 7, 1} || r.Text != "Try again later" {
		t.Fatalf("%+v %v", r, err)
	}
	if r.String() != "451 4.7.1 Try again later" {
		t.Fatalf("%q", r.String())
	}
	r, err = ParseReply("550")
	if err != nil || r.Text == "" || r.String() != "550 "+r.Text {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestProbabilityIsSeededAndFair(t *testing.T) {
	run := func(seed uint64) (hits int, pattern string) {
		e := New(Options{Rand: rand.New(rand.NewPCG(seed, seed))})
		if _, err := e.Add(Rule{Stage: StageMail, Probability: fp(0.3), Reply: "451 x"}); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for i := 0; i < 1000; i++ {
			if e.Decide(Event{Stage: StageMail, From: "a@x"}).Reply != nil {
				hits++
				sb.WriteByte('1')
			} else {
				sb.WriteByte('0')
			}
		}
		if got := e.List()[0].Hits; got != int64(hits) {
			t.Fatalf("hits %d, counted %d", got, hits)
		}
		return hits, sb.String()
	}
	h1, p1 := run(7)
	h2, p2 := run(7)
	if h1 != h2 || p1 != p2 {
		t.Fatal("same seed, different outcome")
	}
	if h1 < 250 || h1 > 350 {
		t.Fatalf("%d hits of 1000 at p=0.3", h1)
	}
	if _, p3 := run(8); p3 == p1 {
		t.Fatal("other seed, same outcome")
	}
}

func TestTimesIsExactUnderConcurrency(t *testing.T) {
	e := New(Options{})
	e.Add(Rule{Stage: StageRcpt, Times: 5, Reply: "451 x"})
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if e.Decide(Event{Stage: StageRcpt, To: []string{"a@x"}}).Reply != nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if n != 5 || len(e.List()) != 0 || e.Active() {
		t.Fatalf("%d hits, %d rules left", n, len(e.List()))
	}
}

func TestSwitchAndOrder(t *testing.T) {
	e := New(Options{})
	e.Add(Rule{Stage: StageMail, Delay: Duration(time.Second)})
	e.Add(Rule{Stage: StageMail, Delay: Duration(2 * time.Second), Bandwidth: 500})
	e.Add(Rule{Stage: StageMail, Reply: "452 4.3.1 Full"})
	e.Add(Rule{Stage: StageMail, Reply: "550 never reached"})
	o := e.Decide(Event{Stage: StageMail})
	if o.Delay != 3*time.Second || o.Bandwidth != 500 || o.Reply == nil || o.Reply.Code != 452 {
		t.Fatalf("%+v", o)
	}
	e.SetEnabled(false)
	if e.Active() || e.Decide(Event{Stage: StageMail}).Fault() {
		t.Fatal("disabled engine decided")
	}
	e.SetEnabled(true)
	if !e.Active() {
		t.Fatal("re-enabled engine inactive")
	}
	if err := e.Remove("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestRuleJSON(t *testing.T) {
	var r Rule
	err := json.Unmarshal([]byte(`{"stage":"rcpt","to":"*@x","reply":"451 4.7.1 later","delay":"3s","rate":{"messages":10,"per":"1m"}}`), &r)
	if err != nil || time.Duration(r.Delay) != 3*time.Second || time.Duration(r.Rate.Per) != time.Minute {
		t.Fatalf("%+v %v", r, err)
	}
	b, _ := json.Marshal(Rule{Stage: StageRcpt, Greylist: Duration(30 * time.Second)})
	if !strings.Contains(string(b), `"greylist":"30s"`) {
		t.Fatalf("%s", b)
	}
}

func TestParseFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Rule
	}{
		{"rcpt,to=*@bounce.test=550 5.1.1 No such user", Rule{Stage: StageRcpt, To: "*@bounce.test", Reply: "550 5.1.1 No such user"}},
		{"mail,from=app@*,times=1=reply:451 4.7.1 Try again; later", Rule{Stage: StageMail, From: "app@*", Times: 1, Reply: "451 4.7.1 Try again; later"}},
		{"data=delay:5s", Rule{Stage: StageData, Delay: Duration(5 * time.Second)}},
		{"data=delay:1s;bandwidth:100-200;disconnect", Rule{Stage: StageData, Delay: Duration(time.Second), Bandwidth: 100, BandwidthMax: 200, Disconnect: true}},
		{"rcpt=greylist:30s", Rule{Stage: StageRcpt, Greylist: Duration(30 * time.Second)}},
		{"mail=rate:10/1m", Rule{Stage: StageMail, Rate: &Rate{Messages: 10, Per: Duration(time.Minute)}}},
		{"connect,p=0.5=disconnect", Rule{Stage: StageConnect, Probability: fp(0.5), Disconnect: true}},
	} {
		got, err := ParseFlag(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		c.want.Origin = "flag"
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(c.want)
		if string(gb) != string(wb) {
			t.Errorf("%q:\n got %s\nwant %s", c.in, gb, wb)
		}
	}
	for _, bad := range []string{"", "rcpt", "rcpt=", "quit=disconnect", "rcpt,to=*@x", "rcpt,cc=x=disconnect",
		"rcpt=delay:-1s", "rcpt=delay", "rcpt=explode", "rcpt=rate:x", "mail=250 ok", "rcpt,to=[x=disconnect"} {
		if _, err := ParseFlag(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestChaosAndJimMapOntoRules(t *testing.T) {
	e := New(Options{Rand: rand.New(rand.NewPCG(1, 1))})
	e.Add(Rule{Stage: StageHelo, Delay: Duration(time.Millisecond)})
	if err := e.SetChaos(Chaos{Sender: ChaosTrigger{ErrorCode: 451, Probability: 100}}); err != nil {
		t.Fatal(err)
	}
	o := e.Decide(Event{Stage: StageMail, From: "a@x"})
	if o.Reply == nil || o.Reply.String() != "451 Chaos sender error" {
		t.Fatalf("%+v", o)
	}
	if c := e.Chaos(); c.Recipient.ErrorCode != 451 || c.Authentication.ErrorCode != 535 {
		t.Fatalf("omitted triggers not reset to defaults: %+v", c)
	}
	if err := e.SetChaos(Chaos{Sender: ChaosTrigger{ErrorCode: 399, Probability: 1}}); err == nil {
		t.Fatal("code 399 accepted")
	}
	if err := e.SetChaos(Chaos{}); err != nil || e.Decide(Event{Stage: StageMail}).Fault() {
		t.Fatal("empty chaos still refuses")
	}
	if len(e.List()) != 1 {
		t.Fatalf("native rule lost: %+v", e.List())
	}
	j := Jim{AcceptChance: 0, RejectRecipientChance: 1}
	if err := e.SetJim(&j); err != nil {
		t.Fatal(err)
	}
	if !e.Decide(Event{Stage: StageConnect}).Disconnect {
		t.Fatal("AcceptChance 0 accepted")
	}
	if o := e.Decide(Event{Stage: StageRcpt, To: []string{"a@x"}}); o.Reply == nil || o.Reply.Code != 550 {
		t.Fatalf("%+v", o)
	}
	if err := (Jim{AcceptChance: 2}).Check(); err == nil || !strings.Contains(err.Error(), "AcceptChance") {
		t.Fatalf("%v", err)
	}
	e.SetJim(nil)
	if e.Jim() != nil || len(e.List()) != 1 {
		t.Fatal("jim stayed")
	}
	c, err := ParseChaosTriggers("Sender:451:10, Recipient:550:5,auth:535:100")
	if err != nil || c.Sender != (ChaosTrigger{451, 10}) || c.Recipient != (ChaosTrigger{550, 5}) || c.Authentication != (ChaosTrigger{535, 100}) {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"Sender:451", "Bogus:451:1", "Sender:300:1", "Sender:451:101", "Sender:x:1"} {
		if _, err := ParseChaosTriggers(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseFlag(f *testing.F) {
	for _, s := range []string{"rcpt,to=*@bounce.test=550 5.1.1 No such user", "data=delay:5s", "mail=rate:10/1m",
		"connect,p=0.5=disconnect", "rcpt,from=[a-z]*@x,to=?@y,times=3=reply:451 4.7.1 x;y", "data=bandwidth:1-2;delay:1s",
		"=", ",=", "rcpt,,=", "helo=greylist:1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseFlag(s)
		if err != nil {
			return
		}
		// What parses is a valid rule the engine takes, and survives JSON.
		e := New(Options{})
		added, err := e.Add(r)
		if err != nil {
			t.Fatalf("%q parsed but Add: %v", s, err)
		}
		b, err := json.Marshal(added)
		if err != nil {
			t.Fatal(err)
		}
		var back Rule
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if err := Validate(back); err != nil {
			t.Fatalf("%s round trip: %v", b, err)
		}
		e.Decide(Event{Stage: r.Stage, Client: "127.0.0.1", From: "a@b", To: []string{"c@d"}})
	})
}

func FuzzGlob(f *testing.F) {
	for _, s := range []string{"*@x", "[a-z]?*", `\*`, "[]]", "[!]x]"} {
		f.Add(s, "abc@x")
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		g, err := compileGlob(p)
		if err != nil {
			return
		}
		g.match(s)
	})
}
