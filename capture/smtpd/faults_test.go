package smtpd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// faultServer is a test server with a fault engine and a session log.
type faultServer struct {
	*testServer
	eng *faults.Engine
	log *smtplog.Log
}

// fakeClock is a settable clock for greylisting and rate limits.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFaultServer(t testing.TB, clock *fakeClock, rules ...faults.Rule) *faultServer {
	t.Helper()
	eo := faults.Options{Rand: rand.New(rand.NewPCG(1, 2))}
	if clock != nil {
		eo.Now = clock.Now
	}
	eng := faults.New(eo)
	for _, r := range rules {
		if _, err := eng.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	lg := smtplog.New(smtplog.Options{})
	ts := newTestServer(t, func(o *smtpd.Options) { o.Faults = eng; o.SessionLog = lg })
	return &faultServer{testServer: ts, eng: eng, log: lg}
}

// client is a raw SMTP client that reports hang-ups instead of failing.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialFrom(t testing.TB, local, addr string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

// read returns the last line of the next reply, or "EOF" on a hang-up.
func (c *client) read() string {
	c.t.Helper()
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return "EOF"
			}
			c.t.Fatalf("read: %v", err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (c *client) send(line string) string {
	fmt.Fprintf(c.c, "%s\r\n", line)
	return c.read()
}

func (c *client) want(got, code string) {
	c.t.Helper()
	if !strings.HasPrefix(got, code) {
		c.t.Fatalf("got %q, want %s", got, code)
	}
}

// transaction runs one full session to the end of the message and returns
// each step's reply, stopping at the first that is not the expected one.
func transaction(t testing.TB, local, addr, from string, to ...string) []string {
	c := dialFrom(t, local, addr)
	var got []string
	step := func(line, code string) bool {
		var r string
		if line == "" {
			r = c.read()
		} else {
			r = c.send(line)
		}
		got = append(got, r)
		return strings.HasPrefix(r, code)
	}
	if !step("", "220") || !step("EHLO client.test", "250") || !step("AUTH PLAIN AHVzZXIAc2VjcmV0", "235") ||
		!step("MAIL FROM:<"+from+">", "250") {
		return got
	}
	ok := 0
	for _, r := range to {
		if step("RCPT TO:<"+r+">", "250") {
			ok++
		} else if got[len(got)-1] == "EOF" {
			return got
		}
	}
	if ok == 0 || !step("DATA", "354") {
		return got
	}
	fmt.Fprintf(c.c, "Subject: t\r\n\r\nbody line\r\n.\r\n")
	got = append(got, c.read())
	if got[len(got)-1] != "EOF" {
		c.send("QUIT")
	}
	return got
}

func stored(t testing.TB, st *store.Store) int {
	t.Helper()
	_, n, err := st.Search(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stepOf is where each stage's reply lands in transaction's answers.
var stepOf = map[faults.Stage]int{faults.StageConnect: 0, faults.StageHelo: 1, faults.StageAuth: 2,
	faults.StageMail: 3, faults.StageRcpt: 4, faults.StageData: 5, faults.StageMessage: 6}

func TestEveryStageTimesEveryAction(t *testing.T) {
	t.Parallel()
	for _, st := range faults.Stages {
		for _, action := range []string{"reply4", "reply5", "disconnect", "delay"} {
			t.Run(string(st)+"/"+action, func(t *testing.T) {
				t.Parallel() // each case has its own server and store
				r := faults.Rule{Stage: st}
				switch action {
				case "reply4":
					r.Reply = "451 4.7.1 Try later please"
				case "reply5":
					r.Reply = "554 5.7.1 Go away"
				case "disconnect":
					r.Disconnect = true
				case "delay":
					r.Delay = faults.Duration(300 * time.Millisecond)
				}
				fs := newFaultServer(t, nil, r)
				start := time.Now()
				got := transaction(t, "", fs.addr, "app@example.com", "user@example.com")
				i := stepOf[st]
				switch action {
				case "reply4", "reply5":
					want := strings.TrimPrefix(r.Reply, "")
					if len(got) <= i || got[i] != want {
						t.Fatalf("replies %q: want %q at step %d", got, want, i)
					}
					if len(got) != i+1 && st != faults.StageConnect {
						// After a refusal the client stops; only rcpt goes
						// on to DATA when another recipient was accepted.
						t.Fatalf("replies %q: went on after the refusal", got)
					}
				case "disconnect":
					if len(got) <= i || got[i] != "EOF" {
						t.Fatalf("replies %q: want a hang-up at step %d", got, i)
					}
				case "delay":
					if len(got) != 7 || !strings.HasPrefix(got[6], "250") {
						t.Fatalf("replies %q: a delay must not refuse", got)
					}
					if el := time.Since(start); el < 300*time.Millisecond {
						t.Fatalf("took %v, want the 300ms delay", el)
					}
				}
				wantStored := 0
				if action == "delay" {
					wantStored = 1
				}
				if n := stored(t, fs.st); n != wantStored {
					t.Fatalf("stored %d messages, want %d", n, wantStored)
				}
				rules := fs.eng.List()
				if len(rules) != 1 || rules[0].Hits != 1 {
					t.Fatalf("rules %+v: want one hit", rules)
				}
				// The session log marks the fault's reply.
				ss := fs.log.List(smtplog.Filter{})
				if len(ss) != 1 {
					t.Fatalf("%d sessions logged", len(ss))
				}
				if action != "delay" && ss[0].Faults == 0 {
					t.Fatalf("session log marks no fault: %+v", ss[0].Lines)
				}
			})
		}
	}
}

func TestRcptRefusalRefusesOnlyThatRecipient(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageRcpt, To: "*@bounce.test", Reply: "550 5.1.1 No such user"})
	got := transaction(t, "", fs.addr, "app@example.com", "ok@example.com", "gone@Bounce.test")
	want := []string{"220", "250", "235", "250", "250", "550 5.1.1 No such user", "354", "250"}
	if len(got) != len(want) {
		t.Fatalf("replies %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("replies %q, want %q", got, want)
		}
	}
	list, _, _ := fs.st.Search(context.Background(), store.Query{})
	if len(list) != 1 || strings.Join(list[0].Mailboxes, ",") != "ok@example.com" {
		t.Fatalf("stored %+v", list)
	}
}

func TestMessageStage2xxAcknowledgesAndLoses(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageMessage, Reply: "250 2.0.0 Ok: queued as lost"})
	got := transaction(t, "", fs.addr, "app@example.com", "user@example.com")
	if len(got) != 7 || got[6] != "250 2.0.0 Ok: queued as lost" {
		t.Fatalf("replies %q", got)
	}
	if n := stored(t, fs.st); n != 0 {
		t.Fatalf("stored %d, want the message lost", n)
	}
}

func TestDataFaultThenRetryOnSameConnection(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageData, Times: 1, Reply: "452 4.3.1 Insufficient storage"})
	c := dialFrom(t, "", fs.addr)
	c.want(c.read(), "220")
	c.want(c.send("EHLO a"), "250")
	// Pipelined, as PIPELINING clients send it.
	fmt.Fprintf(c.c, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
	c.want(c.read(), "250")
	c.want(c.read(), "250")
	c.want(c.read(), "452 4.3.1")
	// The transaction ended: a new one works, and a body line "DATA" is
	// not mistaken for the command.
	c.want(c.send("MAIL FROM:<a@x.test>"), "250")
	c.want(c.send("RCPT TO:<b@x.test>"), "250")
	c.want(c.send("DATA"), "354")
	c.want(c.send("Subject: x\r\n\r\nDATA\r\n."), "250")
	c.want(c.send("QUIT"), "221")
	if n := stored(t, fs.st); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
}

func TestFromGlobSelectsSender(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageMail, From: "*@noisy.test", Reply: "421 4.7.0 Not you"})
	if got := transaction(t, "", fs.addr, "x@quiet.test", "u@example.com"); len(got) != 7 {
		t.Fatalf("non-matching sender refused: %q", got)
	}
	if got := transaction(t, "", fs.addr, "Bot@NOISY.test", "u@example.com"); got[len(got)-1] != "421 4.7.0 Not you" {
		t.Fatalf("matching sender not refused: %q", got)
	}
}

func TestTimesRetiresRule(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageMail, Times: 2, Reply: "451 4.7.1 Later"})
	for i, want := range []int{4, 4, 7} {
		if got := transaction(t, "", fs.addr, "a@x.test", "b@x.test"); len(got) != want {
			t.Fatalf("attempt %d: replies %q", i, got)
		}
	}
	if rs := fs.eng.List(); len(rs) != 0 {
		t.Fatalf("rule not retired: %+v", rs)
	}
}

func TestGreylistingAcceptsRetryAfterPeriod(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	fs := newFaultServer(t, clock, faults.Rule{Stage: faults.StageRcpt, Greylist: faults.Duration(30 * time.Second)})
	try := func() string {
		got := transaction(t, "", fs.addr, "app@example.com", "user@example.com")
		if len(got) > 4 {
			return got[4]
		}
		return strings.Join(got, "|")
	}
	if r := try(); r != "451 4.7.1 Greylisted, please try again later" {
		t.Fatalf("first attempt: %q", r)
	}
	clock.Add(10 * time.Second)
	if r := try(); !strings.HasPrefix(r, "451 4.7.1") {
		t.Fatalf("early retry: %q", r)
	}
	// Another recipient is another triple.
	if got := transaction(t, "", fs.addr, "app@example.com", "other@example.com"); !strings.HasPrefix(got[4], "451") {
		t.Fatalf("new triple: %q", got)
	}
	clock.Add(25 * time.Second)
	if r := try(); !strings.HasPrefix(r, "250") {
		t.Fatalf("retry after the period: %q", r)
	}
	if n := stored(t, fs.st); n != 1 {
		t.Fatalf("stored %d", n)
	}
	// The same triple from another client IP starts over.
	if got := transaction(t, "127.0.0.2", fs.addr, "app@example.com", "user@example.com"); !strings.HasPrefix(got[4], "451") {
		t.Fatalf("other client IP: %q", got)
	}
}

func TestRateLimitPerClientIP(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	fs := newFaultServer(t, clock, faults.Rule{Stage: faults.StageMail, Rate: &faults.Rate{Messages: 2, Per: faults.Duration(time.Minute)}})
	c := dialFrom(t, "127.0.0.2", fs.addr)
	c.want(c.read(), "220")
	c.want(c.send("EHLO a"), "250")
	for i := 0; i < 2; i++ {
		c.want(c.send("MAIL FROM:<a@x.test>"), "250")
		c.want(c.send("RSET"), "250")
	}
	c.want(c.send("MAIL FROM:<a@x.test>"), "421 4.7.0")
	if r := c.read(); r != "EOF" {
		t.Fatalf("after the 421: %q, want a hang-up", r)
	}
	// Other client IPs have their own count.
	for _, ip := range []string{"127.0.0.3", "127.0.0.1"} {
		if got := transaction(t, ip, fs.addr, "a@x.test", "b@x.test"); len(got) != 7 {
			t.Fatalf("%s: %q", ip, got)
		}
	}
	if got := transaction(t, "127.0.0.2", fs.addr, "a@x.test", "b@x.test"); !strings.HasPrefix(got[3], "421") {
		t.Fatalf("127.0.0.2 still over: %q", got)
	}
	clock.Add(time.Minute)
	if got := transaction(t, "127.0.0.2", fs.addr, "a@x.test", "b@x.test"); len(got) != 7 {
		t.Fatalf("127.0.0.2 after the window: %q", got)
	}
}

func TestBandwidthSlowsReplies(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageConnect, Bandwidth: 100})
	c := dialFrom(t, "", fs.addr)
	start := time.Now()
	c.want(c.read(), "220")
	c.want(c.send("EHLO client.test"), "250")
	// The greeting and the EHLO reply are well over 100 bytes.
	if el := time.Since(start); el < time.Second {
		t.Fatalf("replies took %v at 100 B/s", el)
	}
}

func TestShutdownCutsDelays(t *testing.T) {
	t.Parallel()
	// Each session meets its own delay (by sender, by recipient), so no
	// rule changes while either is mid-command.
	fs := newFaultServer(t, nil, faults.Rule{Stage: faults.StageMail, From: "idle@x.test", Delay: faults.Duration(10 * time.Minute)},
		faults.Rule{Stage: faults.StageRcpt, To: "b@x.test", Delay: faults.Duration(10 * time.Minute)})
	idle := dialFrom(t, "", fs.addr)
	idle.want(idle.read(), "220")
	idle.want(idle.send("EHLO a"), "250")
	fmt.Fprintf(idle.c, "MAIL FROM:<idle@x.test>\r\n")
	// A session in a transaction finishes it: its delayed reply comes at
	// once, and then its message is taken.
	busy := dialFrom(t, "", fs.addr)
	busy.want(busy.read(), "220")
	busy.want(busy.send("EHLO a"), "250")
	busy.want(busy.send("MAIL FROM:<busy@x.test>"), "250")
	fmt.Fprintf(busy.c, "RCPT TO:<b@x.test>\r\n")
	// Both sessions have read their delayed command (the transcript records
	// it as read) before the shutdown starts.
	waitTranscript(t, fs, "MAIL FROM:<idle@x.test>", "RCPT TO:<b@x.test>")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- fs.srv.Shutdown(ctx)
	}()
	idle.want(idle.read(), "421")
	busy.want(busy.read(), "250")
	busy.want(busy.send("DATA"), "354")
	busy.want(busy.send("Subject: x\r\n\r\nbye\r\n."), "250")
	if err := <-done; err != nil {
		t.Fatalf("shutdown held by a delay: %v", err)
	}
}

// waitTranscript waits until the session log holds a client line with each
// of texts.
func waitTranscript(t *testing.T, fs *faultServer, texts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var all []string
		for _, ss := range fs.log.List(smtplog.Filter{}) {
			for _, l := range ss.Lines {
				all = append(all, l.Dir+" "+l.Text)
			}
		}
		text, missing := strings.Join(all, "\n"), ""
		for _, want := range texts {
			if !strings.Contains(text, want) {
				missing = want
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the transcript never showed %q:\n%s", missing, text)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSessionLogMasksAuthAndSkipsBodies(t *testing.T) {
	t.Parallel()
	fs := newFaultServer(t, nil)
	c := dialFrom(t, "", fs.addr)
	c.want(c.read(), "220")
	c.want(c.send("EHLO a"), "250")
	c.want(c.send("AUTH LOGIN"), "334")
	c.want(c.send("dXNlcg=="), "334")
	c.want(c.send("c2VjcmV0"), "235")
	c.want(c.send("MAIL FROM:<a@x.test>"), "250")
	c.want(c.send("RCPT TO:<b@x.test>"), "250")
	c.want(c.send("DATA"), "354")
	c.want(c.send("Subject: hidden body\r\n\r\nsecret body text\r\n."), "250")
	c.want(c.send("QUIT"), "221")
	c.c.Close()
	// The whole transcript is there once the session has ended.
	var ss []smtplog.View
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ss = fs.log.List(smtplog.Filter{To: "b@x"})
		if len(ss) == 1 && ss[0].Ended != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, none ended", len(ss))
		}
	}
	var all []string
	for _, l := range ss[0].Lines {
		all = append(all, l.Dir+" "+l.Text)
	}
	text := strings.Join(all, "\n")
	for _, bad := range []string{"dXNlcg", "c2VjcmV0", "secret body", "hidden body"} {
		if strings.Contains(text, bad) {
			t.Fatalf("transcript shows %q:\n%s", bad, text)
		}
	}
	for _, good := range []string{"C AUTH LOGIN", "C ***", "S 235", "C MAIL FROM:<a@x.test>", "C DATA", "S 354", "C QUIT", "S 221"} {
		if !strings.Contains(text, good) {
			t.Fatalf("transcript lacks %q:\n%s", good, text)
		}
	}
	if ss[0].Ended == nil {
		t.Fatalf("session not ended")
	}
	if len(fs.log.List(smtplog.Filter{From: "nobody"})) != 0 {
		t.Fatal("filter on from matched")
	}
	// An initial response on the AUTH line is masked too.
	transaction(t, "", fs.addr, "plain@x.test", "b@x.test")
	ss = fs.log.List(smtplog.Filter{From: "plain@x.test"})
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	for _, l := range ss[0].Lines {
		if strings.Contains(l.Text, "AHVzZXIAc2VjcmV0") {
			t.Fatalf("AUTH PLAIN secret in the transcript: %q", l.Text)
		}
	}
}

func TestSessionLogStaysBounded(t *testing.T) {
	t.Parallel()
	lg := smtplog.New(smtplog.Options{MaxSessions: 3, MaxLines: 5})
	ts := newTestServer(t, func(o *smtpd.Options) { o.SessionLog = lg })
	for i := 0; i < 5; i++ {
		c := dialFrom(t, "", ts.addr)
		c.want(c.read(), "220")
		for j := 0; j < 10; j++ {
			c.want(c.send("NOOP"), "250")
		}
		c.send("QUIT")
	}
	ss := lg.List(smtplog.Filter{})
	if len(ss) != 3 {
		t.Fatalf("%d sessions kept, want 3", len(ss))
	}
	for _, s := range ss {
		if len(s.Lines) != 5 || s.Dropped == 0 {
			t.Fatalf("session %d: %d lines, %d dropped", s.ID, len(s.Lines), s.Dropped)
		}
	}
}

// Without the session log, connections are wrapped only while a rule
// exists: one added later applies to the next connection, at the DATA
// command itself.
func TestRuleAddedLaterWithoutSessionLog(t *testing.T) {
	t.Parallel()
	eng := faults.New(faults.Options{})
	ts := newTestServer(t, func(o *smtpd.Options) { o.Faults = eng })
	if got := transaction(t, "", ts.addr, "a@x.test", "b@x.test"); len(got) != 7 {
		t.Fatalf("no rules: %q", got)
	}
	eng.Add(faults.Rule{Stage: faults.StageData, Reply: "451 4.3.0 Not now"})
	if got := transaction(t, "", ts.addr, "a@x.test", "b@x.test"); len(got) != 6 || got[5] != "451 4.3.0 Not now" {
		t.Fatalf("rule added later: %q", got)
	}
}

// The session log records the same transcript whether it only watches the
// stream (no rule when the connection opened: bytes pass through as read)
// or holds each command for the fault engine (a rule exists): pipelined
// commands, a message whose end arrives split across reads after
// dot-stuffed lines, commands pipelined behind it, and a BDAT chunk.
// Not parallel: sleeps split the client's writes into separate reads.
func TestSessionLogTranscriptPassiveAndActive(t *testing.T) {
	script := func(t *testing.T, fs *faultServer) []string {
		c := dialFrom(t, "", fs.addr)
		write := func(s string) {
			if _, err := io.WriteString(c.c, s); err != nil {
				t.Fatal(err)
			}
		}
		replies := func(codes ...string) {
			for _, code := range codes {
				c.want(c.read(), code)
			}
		}
		replies("220")
		write("EHLO a\r\n")
		replies("250")
		write("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
		replies("250", "250", "354")
		write("Subject: s\r\n\r\n..dot-stuffed\r\n.not the end\r\nMAIL FROM:<body@x.test>\r\n")
		time.Sleep(30 * time.Millisecond)
		write(".\r")
		time.Sleep(30 * time.Millisecond)
		write("\nRSET\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nBDAT 5 LAST\r\nhello")
		replies("250", "250", "250", "250", "250")
		write("NOOP\r\nQUIT\r\n")
		replies("250", "221")
		c.c.Close()
		var ss []smtplog.View
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if ss = fs.log.List(smtplog.Filter{}); len(ss) == 1 && ss[0].Ended != nil {
				break
			}
		}
		if len(ss) != 1 {
			t.Fatalf("%d sessions", len(ss))
		}
		var lines []string
		for _, l := range ss[0].Lines {
			lines = append(lines, l.Dir+" "+l.Text)
		}
		if got, want := strings.Join(ss[0].From, ","), "a@x.test,c@x.test"; got != want {
			t.Errorf("senders %q, want %q", got, want)
		}
		return lines
	}
	wantCmds := []string{"EHLO a", "MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>", "DATA", "RSET",
		"MAIL FROM:<c@x.test>", "RCPT TO:<d@x.test>", "BDAT 5 LAST", "NOOP", "QUIT"}
	var transcripts [2][]string
	for i, rules := range [][]faults.Rule{nil, {{Stage: faults.StageMail, From: "*@never.test", Reply: "451 4.7.1 no"}}} {
		t.Run(fmt.Sprintf("rules=%d", len(rules)), func(t *testing.T) {
			transcripts[i] = script(t, newFaultServer(t, nil, rules...))
			var cmds []string
			for _, l := range transcripts[i] {
				if c, ok := strings.CutPrefix(l, "C "); ok {
					cmds = append(cmds, c)
				}
			}
			if strings.Join(cmds, "|") != strings.Join(wantCmds, "|") {
				t.Fatalf("commands:\n%s\nwant:\n%s\ntranscript:\n%s", strings.Join(cmds, "\n"), strings.Join(wantCmds, "\n"), strings.Join(transcripts[i], "\n"))
			}
		})
	}
	// The replies, in order, by code (they name the stored message's id).
	// Watching, pipelined commands are logged as they arrive, ahead of
	// their replies; held one at a time, each is followed by its reply.
	code := func(ls []string) string {
		var out []string
		for _, l := range ls {
			if strings.HasPrefix(l, "S ") {
				out = append(out, l[:min(len(l), 5)])
			}
		}
		return strings.Join(out, " ")
	}
	if code(transcripts[0]) != code(transcripts[1]) {
		t.Fatalf("passive and active transcripts differ:\n%s\n--\n%s", strings.Join(transcripts[0], "\n"), strings.Join(transcripts[1], "\n"))
	}
}
