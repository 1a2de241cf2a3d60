package imapd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// TestModelConcurrentSessions is a model-based test of what each session
// sees: several clients have INBOX selected and, in rounds, all at once do
// a random operation (STORE of flags and keywords, EXPUNGE, APPEND, COPY,
// MOVE, FETCH, SEARCH, IDLE) while mail arrives and REST changes flags.
// Each client keeps its own model of the folder from nothing but the
// responses it got (EXISTS, EXPUNGE, FETCH, FLAGS), checking every one as
// it comes (sequence numbers in range, UIDs where they should be, no
// keyword before the FLAGS that announces it). After every round each
// client's model must equal the store's entries, message for message,
// and \Recent must never be in two sessions.
func TestModelConcurrentSessions(t *testing.T) {
	t.Parallel()
	// Side by side: each has its own database (a fresh PostgreSQL schema).
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		runModel(t, filepath.Join(t.TempDir(), "mail.db"), 1, 1)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		runModel(t, storetest.PostgresDSN(t), 2, 2)
	})
}

func runModel(t *testing.T, dsn string, seed int64, instances int) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// On PostgreSQL, two instances share the database (each with its own
	// store and server, as two processes would); clients alternate.
	var addrs []string
	for i := 0; i < instances; i++ {
		ist := st
		if i > 0 {
			if ist, err = store.Open(ctx, store.Options{DSN: dsn}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ist.Close() })
		}
		srv := imapd.New(ist, imapd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, ln.Addr().String())
	}
	const mb = "model@example.com"
	for i := 0; i < 5; i++ {
		if _, err := st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{mb}}, []byte(textMsg(fmt.Sprint("seed ", i), "x"))); err != nil {
			t.Fatal(err)
		}
	}
	const clients, rounds = 4, 60
	rnd := rand.New(rand.NewSource(seed))
	var cs []*modelClient
	for i := 0; i < clients; i++ {
		c, err := dialModel(addrs[i%len(addrs)], i)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.conn.Close() })
		if _, err := c.cmd("LOGIN " + mb + " x"); err != nil {
			t.Fatal(err)
		}
		if i == clients-1 {
			if _, err := c.cmd("CREATE Other"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.cmd("SELECT INBOX"); err != nil {
			t.Fatal(err)
		}
		if err := c.catchUp(); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	inbox, err := st.Folder(ctx, mb, store.InboxName)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < rounds; round++ {
		// Each client's operation is drawn here, so a seed replays a run.
		ops := make([]string, len(cs))
		for i, c := range cs {
			ops[i] = c.randomOp(rnd)
		}
		outside := rnd.Intn(3)
		var wg sync.WaitGroup
		errs := make([]error, len(cs)+1)
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.run(ops[i])
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch outside {
			case 0: // new mail
				_, errs[len(cs)] = st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{mb}}, []byte(textMsg(fmt.Sprint("r", round), "y")))
			case 1: // a flag change from REST or another protocol
				es, err := st.EntryFlags(ctx, inbox.ID)
				if err == nil && len(es) > 0 {
					_, err = st.UpdateFlags(ctx, inbox.ID, []uint32{es[len(es)/2].UID}, store.FlagsAdd, []string{"$Outside"})
				}
				errs[len(cs)] = err
			}
		}()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				if i < len(cs) {
					t.Fatalf("round %d, client %d, %q: %v", round, i, ops[i], err)
				}
				t.Fatalf("round %d, outside change: %v", round, err)
			}
		}
		// Quiet: every client catches up, then must match the store.
		want, err := st.EntryFlags(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		recentIn := map[uint32]int{}
		for i, c := range cs {
			if err := c.catchUp(); err != nil {
				t.Fatalf("round %d, client %d catching up after %q: %v", round, i, ops[i], err)
			}
			if err := c.matches(want); err != nil {
				t.Fatalf("round %d, client %d after %q: %v", round, i, ops[i], err)
			}
			for _, m := range c.msgs {
				if m.recent {
					recentIn[m.uid]++
					if recentIn[m.uid] > 1 {
						t.Fatalf("round %d: UID %d is \\Recent in two sessions", round, m.uid)
					}
				}
			}
		}
	}
}

type modelMsg struct {
	uid    uint32 // 0 until the client fetched it
	flags  []string
	recent bool
}

// modelClient is one IMAP client and its model of the selected folder.
type modelClient struct {
	id       int
	conn     net.Conn
	r        *bufio.Reader
	n        int
	msgs     []modelMsg
	keywords map[string]bool // announced by FLAGS, lower case
}

func dialModel(addr string, id int) (*modelClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &modelClient{id: id, conn: conn, r: bufio.NewReader(conn), keywords: map[string]bool{}}
	if _, err := c.read(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *modelClient) read() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

var (
	fetchRE  = regexp.MustCompile(`^\* (\d+) FETCH \((.*)\)$`)
	uidRE    = regexp.MustCompile(`UID (\d+)`)
	flagsRE  = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	numRespR = regexp.MustCompile(`^\* (\d+) (EXISTS|EXPUNGE|RECENT)$`)
)

// apply checks one untagged response against the model and applies it.
func (c *modelClient) apply(l string) error {
	if m := numRespR.FindStringSubmatch(l); m != nil {
		n, _ := strconv.Atoi(m[1])
		switch m[2] {
		case "EXISTS":
			if n < len(c.msgs) {
				return fmt.Errorf("%q: EXISTS below the %d messages known", l, len(c.msgs))
			}
			for len(c.msgs) < n {
				c.msgs = append(c.msgs, modelMsg{})
			}
		case "EXPUNGE":
			if n < 1 || n > len(c.msgs) {
				return fmt.Errorf("%q: out of range (%d messages)", l, len(c.msgs))
			}
			c.msgs = slices.Delete(c.msgs, n-1, n)
		}
		return nil
	}
	if strings.HasPrefix(l, "* FLAGS (") {
		c.keywords = map[string]bool{}
		for _, f := range strings.Fields(strings.TrimSuffix(strings.TrimPrefix(l, "* FLAGS ("), ")")) {
			c.keywords[strings.ToLower(f)] = true
		}
		return nil
	}
	m := fetchRE.FindStringSubmatch(l)
	if m == nil {
		return nil
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 || n > len(c.msgs) {
		return fmt.Errorf("%q: out of range (%d messages)", l, len(c.msgs))
	}
	msg := &c.msgs[n-1]
	if u := uidRE.FindStringSubmatch(m[2]); u != nil {
		uid, _ := strconv.ParseUint(u[1], 10, 32)
		if msg.uid != 0 && msg.uid != uint32(uid) {
			return fmt.Errorf("%q: message %d has UID %d", l, n, msg.uid)
		}
		msg.uid = uint32(uid)
	}
	if f := flagsRE.FindStringSubmatch(m[2]); f != nil {
		msg.flags, msg.recent = nil, false
		for _, fl := range strings.Fields(f[1]) {
			if fl == `\Recent` {
				msg.recent = true
				continue
			}
			if !strings.HasPrefix(fl, `\`) && !c.keywords[strings.ToLower(fl)] {
				return fmt.Errorf("%q: keyword %s not announced by FLAGS", l, fl)
			}
			msg.flags = append(msg.flags, fl)
		}
		sort.Strings(msg.flags)
	}
	return nil
}

// cmd sends one command (with any literal) and applies every untagged
// response; it returns the tagged status.
func (c *modelClient) cmd(command string) (string, error) {
	c.n++
	tag := fmt.Sprintf("c%d.%d", c.id, c.n)
	if _, err := io.WriteString(c.conn, tag+" "+command+"\r\n"); err != nil {
		return "", err
	}
	return c.until(tag, command)
}

func (c *modelClient) until(tag, command string) (string, error) {
	for {
		l, err := c.read()
		if err != nil {
			return "", fmt.Errorf("%s: %w", command, err)
		}
		if strings.HasPrefix(l, tag+" ") {
			st := strings.TrimPrefix(l, tag+" ")
			if !strings.HasPrefix(st, "OK") {
				return st, fmt.Errorf("%s: %s", command, st)
			}
			return st, nil
		}
		if strings.HasPrefix(l, "+ ") || strings.HasPrefix(l, "* OK") || strings.HasPrefix(l, "* SEARCH") {
			continue
		}
		if strings.Contains(l, "BYE") || strings.Contains(l, "SERVERBUG") {
			return "", fmt.Errorf("%s: %q", command, l)
		}
		if err := c.apply(l); err != nil {
			return "", fmt.Errorf("%s: %w", command, err)
		}
	}
}

var modelFlags = []string{`\Seen`, `\Flagged`, `\Deleted`, `\Answered`, "$Kw1", "$kw2", "Work", "$Later"}

// randomSet names one or a few messages the client knows, by sequence
// number or UID.
func (c *modelClient) randomSet(rnd *rand.Rand, uid bool) string {
	n := len(c.msgs)
	if n == 0 {
		return "1"
	}
	a := rnd.Intn(n) + 1
	b := a + rnd.Intn(3)
	if b > n {
		b = n
	}
	if !uid {
		if rnd.Intn(5) == 0 {
			return fmt.Sprintf("%d:*", a)
		}
		return fmt.Sprintf("%d:%d", a, b)
	}
	return fmt.Sprintf("%d:%d", c.msgs[a-1].uid, c.msgs[b-1].uid)
}

func (c *modelClient) randomOp(rnd *rand.Rand) string {
	uid := rnd.Intn(2) == 0
	prefix := ""
	if uid {
		prefix = "UID "
	}
	flags := func() string {
		var fs []string
		for _, f := range modelFlags {
			if rnd.Intn(4) == 0 {
				fs = append(fs, f)
			}
		}
		return strings.Join(fs, " ")
	}
	switch k := rnd.Intn(12); {
	case k < 4:
		op := []string{"+FLAGS", "-FLAGS", "FLAGS", "+FLAGS.SILENT", "-FLAGS.SILENT"}[rnd.Intn(5)]
		return fmt.Sprintf("%sSTORE %s %s (%s)", prefix, c.randomSet(rnd, uid), op, flags())
	case k == 4:
		if uid {
			return "UID EXPUNGE " + c.randomSet(rnd, true)
		}
		return "EXPUNGE"
	case k == 5:
		body := fmt.Sprintf("Subject: appended by %d\r\n\r\nbody\r\n", c.id)
		return fmt.Sprintf("APPEND INBOX (%s) {%d}\r\n%s", flags(), len(body), body)
	case k == 6:
		return fmt.Sprintf("%sCOPY %s %s", prefix, c.randomSet(rnd, uid), []string{"INBOX", "Other"}[rnd.Intn(2)])
	case k == 7:
		return fmt.Sprintf("%sMOVE %s %s", prefix, c.randomSet(rnd, uid), []string{"INBOX", "Other"}[rnd.Intn(2)])
	case k == 8:
		return fmt.Sprintf("%sFETCH %s (UID FLAGS)", prefix, c.randomSet(rnd, uid))
	case k == 9:
		return prefix + "SEARCH OR KEYWORD $Kw1 RECENT"
	case k == 10:
		return "IDLE"
	default:
		return "NOOP"
	}
}

var silentRE = regexp.MustCompile(`^(UID )?STORE (\d+):(\d+|\*) ([+-]?)FLAGS\.SILENT \((.*)\)$`)

// applySilent applies a STORE .SILENT to the model, as a client does: the
// server tells nothing of the change it asked for.
func (c *modelClient) applySilent(op string) {
	m := silentRE.FindStringSubmatch(op)
	if m == nil {
		return
	}
	lo, _ := strconv.Atoi(m[2])
	hi := len(c.msgs)
	if m[3] != "*" {
		hi, _ = strconv.Atoi(m[3])
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	given := strings.Fields(m[5])
	for i := range c.msgs {
		msg := &c.msgs[i]
		in := i+1 >= lo && i+1 <= hi
		if m[1] != "" {
			in = msg.uid != 0 && int(msg.uid) >= lo && int(msg.uid) <= hi
		}
		if !in {
			continue
		}
		has := func(f string) bool {
			return slices.ContainsFunc(msg.flags, func(x string) bool { return strings.EqualFold(x, f) })
		}
		switch m[4] {
		case "+":
			for _, f := range given {
				if !has(f) {
					msg.flags = append(msg.flags, f)
				}
			}
		case "-":
			msg.flags = slices.DeleteFunc(msg.flags, func(x string) bool {
				return slices.ContainsFunc(given, func(g string) bool { return strings.EqualFold(x, g) })
			})
		default:
			msg.flags = slices.Clone(given)
		}
		sort.Strings(msg.flags)
	}
}

// run does one operation; IDLE lasts a few milliseconds.
func (c *modelClient) run(op string) error {
	c.applySilent(op)
	if op != "IDLE" {
		st, err := c.cmd(op)
		if err != nil && strings.Contains(st, "[") && !strings.Contains(st, "SERVERBUG") && strings.HasPrefix(st, "NO") {
			return nil // e.g. a UID set of messages expunged meanwhile
		}
		return err
	}
	c.n++
	tag := fmt.Sprintf("c%d.%d", c.id, c.n)
	if _, err := io.WriteString(c.conn, tag+" IDLE\r\n"); err != nil {
		return err
	}
	l, err := c.read()
	for err == nil && !strings.HasPrefix(l, "+ ") {
		if err = c.apply(l); err == nil {
			l, err = c.read()
		}
	}
	if err != nil {
		return fmt.Errorf("IDLE: %w", err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := io.WriteString(c.conn, "DONE\r\n"); err != nil {
		return err
	}
	_, err = c.until(tag, "IDLE")
	return err
}

// catchUp gets every pending update, then learns the UIDs of new messages.
func (c *modelClient) catchUp() error {
	if _, err := c.cmd("NOOP"); err != nil {
		return err
	}
	for i, m := range c.msgs {
		if m.uid == 0 {
			if _, err := c.cmd(fmt.Sprintf("FETCH %d:* (UID FLAGS)", i+1)); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// matches compares the model with the store's entries; then asks the
// server for every message's flags, which must agree with the model.
func (c *modelClient) matches(want []store.Entry) error {
	describe := func() string {
		var b strings.Builder
		for _, m := range c.msgs {
			fmt.Fprintf(&b, " %d%v", m.uid, m.flags)
		}
		b.WriteString(" | store:")
		for _, e := range want {
			fmt.Fprintf(&b, " %d%v", e.UID, e.Flags)
		}
		return b.String()
	}
	if len(c.msgs) != len(want) {
		return fmt.Errorf("client has %d messages, store %d:%s", len(c.msgs), len(want), describe())
	}
	for i, e := range want {
		m := c.msgs[i]
		fl := slices.Clone(e.Flags)
		sort.Strings(fl)
		if m.uid != e.UID || strings.Join(m.flags, " ") != strings.Join(fl, " ") {
			return fmt.Errorf("message %d differs:%s", i+1, describe())
		}
	}
	before := fmt.Sprint(c.msgs)
	if len(c.msgs) > 0 {
		if _, err := c.cmd("FETCH 1:* (UID FLAGS)"); err != nil {
			return err
		}
	}
	if after := fmt.Sprint(c.msgs); after != before {
		return errors.New("FETCH 1:* disagrees with what the session was told: " + before + " vs " + after)
	}
	return nil
}
