package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// LoadResult is what a plain load run measured and verified.
type LoadResult struct {
	Elapsed  time.Duration
	Ops      map[string]OpStats
	Accepted int // messages acknowledged with 250
	Errors   int // failed operations of any kind
	PeakRSS  int64
	Verify   VerifyResult
}

// OK reports whether every acknowledged message was found intact.
func (r LoadResult) OK() bool { return r.Verify.OK() }

// OpStats summarises one kind of operation.
type OpStats struct {
	Count, Errors int
	P50, P99, Max time.Duration
}

// runLoad runs the plain load against cfg.Target, or against an in-process
// sandbox it starts, then verifies and prints the report.
func runLoad(ctx context.Context, cfg Config) (LoadResult, error) {
	var res LoadResult
	t := cfg.Target
	var sb *sandbox.Sandbox
	if t.zero() {
		db := cfg.DB
		if db == "" {
			dir, err := os.MkdirTemp("", "mailsandbox-load-")
			if err != nil {
				return res, err
			}
			defer os.RemoveAll(dir)
			db = filepath.Join(dir, "load.db")
		}
		var err error
		sb, err = sandbox.Start(ctx, sandbox.Config{
			SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0",
			DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return res, fmt.Errorf("start sandbox: %w", err)
		}
		defer sb.Close()
		t = Targets{SMTP: sb.SMTPAddr(), HTTP: sb.HTTPAddr(), POP3: sb.POP3Addr(), IMAP: sb.IMAPAddr()}
	}
	l := newLoad(cfg, t)
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	l.run(lctx)
	cancel()
	res.Elapsed = time.Since(start)
	switch {
	case sb != nil:
		res.PeakRSS = peakRSS("self")
	case cfg.TargetPID > 0:
		res.PeakRSS = peakRSS(strconv.Itoa(cfg.TargetPID))
	}
	res.Verify = l.verify(ctx)
	res.Ops, res.Errors = l.stats.summary()
	res.Accepted = len(l.accepted)
	l.report(res.Elapsed, res.Ops, res.Errors, res.PeakRSS, sb != nil)
	res.Verify.print(l.out)
	return res, nil
}

// load is the shared state of one run's workers.
type load struct {
	cfg   Config
	t     Targets
	out   io.Writer
	runID string
	http  *http.Client
	stats *stats
	seq   atomic.Int64
	seed  int64

	mu       sync.Mutex
	accepted map[string][]byte // token → raw, acknowledged with 250
	doubt    map[string][]byte // token → raw, transaction broke off after DATA began
	tokens   []string          // accepted tokens, for readers to pick from
	ids      []string          // message ids seen by readers
}

func newLoad(cfg Config, t Targets) *load {
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	return &load{
		cfg: cfg, t: t, out: out, seed: seed,
		runID: strconv.FormatInt(seed%1e9, 36),
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		}},
		stats:    newStats(),
		accepted: map[string][]byte{},
		doubt:    map[string][]byte{},
	}
}

func (l *load) rng(worker int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(l.seed), uint64(worker)*7919+1))
}

// run starts every worker and returns once ctx ends and all have stopped.
func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	spawn := func(n int, f func(context.Context, int)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				f(ctx, i)
			}(i)
		}
	}
	spawn(l.cfg.SMTPConns, l.smtpWorker)
	spawn(l.cfg.Readers, l.restWorker)
	spawn(l.cfg.Waiters, l.waitWorker)
	if l.t.POP3 != "" {
		spawn(l.cfg.POP3, l.pop3Worker)
	}
	if l.t.IMAP != "" {
		spawn(l.cfg.IMAP, l.imapWorker)
	}
	wg.Wait()
	l.http.CloseIdleConnections()
}

func (l *load) mailbox(n int) string { return fmt.Sprintf("box%03d@load.test", n%l.cfg.Mailboxes) }

// token is unique per message and fixed-width, so a substring search for
// it finds only its own message.
func (l *load) token(n int64) string { return fmt.Sprintf("L%sN%09dE", l.runID, n) }

func (l *load) message(token string, n int64, rcpts []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Load <load@load.test>\r\nTo: %s\r\nSubject: load %s\r\nMessage-ID: <%s@load.test>\r\n",
		strings.Join(rcpts, ", "), token, token)
	fmt.Fprintf(&b, "Date: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message %d of run %s. Grüße, 8-bit ☃ and a .dot line follow.\r\n.leading dot\r\n", n, l.runID)
	for i := 0; b.Len() < l.cfg.Size; i++ {
		fmt.Fprintf(&b, "%06d %s the quick brown fox jumps over the lazy dog 0123456789\r\n", i, token)
	}
	return b.Bytes()
}

func (l *load) smtpWorker(ctx context.Context, w int) {
	for ctx.Err() == nil {
		start := time.Now()
		c, err := smtp.Dial(l.t.SMTP)
		if err == nil {
			err = c.Hello("load.test")
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			if !ended(ctx) {
				l.stats.fail("smtp_connect", err)
			}
			pause(ctx, 100*time.Millisecond)
			continue
		}
		l.stats.ok("smtp_connect", time.Since(start))
		for i := 0; i < 100 && ctx.Err() == nil; i++ {
			n := l.seq.Add(1)
			if n > int64(l.cfg.MaxMessages) {
				c.Quit()
				return
			}
			tok := l.token(n)
			rcpts := []string{l.mailbox(int(n))}
			if n%7 == 0 {
				rcpts = append(rcpts, l.mailbox(int(n)+1))
			}
			raw := l.message(tok, n, rcpts)
			start := time.Now()
			dataBegun, err := send(c, rcpts, raw)
			if err != nil {
				if dataBegun {
					l.mu.Lock()
					l.doubt[tok] = raw
					l.mu.Unlock()
				}
				if !ended(ctx) {
					l.stats.fail("smtp_send", err)
				}
				break
			}
			l.stats.ok("smtp_send", time.Since(start))
			l.mu.Lock()
			l.accepted[tok] = raw
			l.tokens = append(l.tokens, tok)
			l.mu.Unlock()
		}
		c.Close()
	}
}

// send runs one transaction; dataBegun says whether the message may have
// reached the server (so that an error leaves its fate in doubt).
func send(c *smtp.Client, rcpts []string, raw []byte) (dataBegun bool, err error) {
	if err := c.Mail("load@load.test", nil); err != nil {
		return false, err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return false, err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return false, err
	}
	if _, err := wc.Write(raw); err != nil {
		wc.Close()
		return true, err
	}
	return true, wc.Close()
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (l *load) pickToken(r *rand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tokens) == 0 {
		return ""
	}
	// Favour recent mail, as tests do.
	n := len(l.tokens)
	if r.IntN(2) == 0 && n > 50 {
		return l.tokens[n-1-r.IntN(50)]
	}
	return l.tokens[r.IntN(n)]
}

func (l *load) pickID(r *rand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ids) == 0 {
		return ""
	}
	return l.ids[r.IntN(len(l.ids))]
}

type summaryList struct {
	Total    int `json:"total"`
	Messages []struct {
		ID      string `json:"id"`
		Subject string `json:"subject"`
	} `json:"messages"`
}

// getJSON GETs path from the REST API; it returns the status and decodes a
// 200 body into v.
func (l *load) getJSON(ctx context.Context, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.t.HTTP+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || v == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

func (l *load) getRaw(ctx context.Context, id string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.t.HTTP+"/api/v1/messages/"+url.PathEscape(id)+"/raw", nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func (l *load) restWorker(ctx context.Context, w int) {
	r := l.rng(1000 + w)
	for ctx.Err() == nil {
		var op, path string
		var into any
		var list summaryList
		switch k := r.IntN(10); {
		case k < 2:
			op, path = "rest_list", "/api/v1/mailboxes"
		case k < 4:
			op, path, into = "rest_mailbox", "/api/v1/mailboxes/"+url.PathEscape(l.mailbox(r.IntN(l.cfg.Mailboxes)))+"/messages?limit=20", &list
		case k < 7:
			tok := l.pickToken(r)
			if tok == "" {
				pause(ctx, 20*time.Millisecond)
				continue
			}
			op, path, into = "rest_search", "/api/v1/messages/search?subject="+url.QueryEscape(tok), &list
		default:
			id := l.pickID(r)
			if id == "" {
				pause(ctx, 20*time.Millisecond)
				continue
			}
			op, path = "rest_get", "/api/v1/messages/"+url.PathEscape(id)
		}
		start := time.Now()
		code, err := l.getJSON(ctx, path, into)
		if ended(ctx) {
			return
		}
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%s: status %d", path, code)
		}
		if err != nil {
			l.stats.fail(op, err)
			pause(ctx, 50*time.Millisecond)
			continue
		}
		l.stats.ok(op, time.Since(start))
		if op == "rest_search" && list.Total != 1 {
			l.stats.fail("rest_search_count", fmt.Errorf("search for one acknowledged token found %d", list.Total))
		}
		if len(list.Messages) > 0 {
			l.mu.Lock()
			if len(l.ids) < 100000 {
				l.ids = append(l.ids, list.Messages[0].ID)
			}
			l.mu.Unlock()
		}
	}
}

func (l *load) waitWorker(ctx context.Context, w int) {
	r := l.rng(2000 + w)
	for ctx.Err() == nil {
		since := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
		path := "/api/v1/messages/wait?to=" + url.QueryEscape(l.mailbox(r.IntN(l.cfg.Mailboxes))) +
			"&since=" + url.QueryEscape(since) + "&timeout=5s"
		start := time.Now()
		code, err := l.getJSON(ctx, path, nil)
		if ended(ctx) {
			return
		}
		switch {
		case err != nil:
			l.stats.fail("rest_wait", err)
			pause(ctx, 50*time.Millisecond)
		case code == http.StatusRequestTimeout:
			l.stats.count("rest_wait_timeout")
		case code != http.StatusOK:
			l.stats.fail("rest_wait", fmt.Errorf("status %d", code))
		default:
			l.stats.ok("rest_wait", time.Since(start))
		}
	}
}

// pop3Worker logs in to a mailbox, lists it, retrieves one message and
// checks it against what was sent, and quits without deleting.
func (l *load) pop3Worker(ctx context.Context, w int) {
	r := l.rng(3000 + w)
	for ctx.Err() == nil {
		start := time.Now()
		err := l.pop3Session(ctx, r, w)
		if ended(ctx) {
			return
		}
		if errors.Is(err, errInUse) {
			l.stats.count("pop3_in_use")
			continue
		}
		if err != nil {
			l.stats.fail("pop3_session", err)
			pause(ctx, 50*time.Millisecond)
			continue
		}
		l.stats.ok("pop3_session", time.Since(start))
	}
}

var errInUse = errors.New("mailbox in use")

func (l *load) pop3Session(ctx context.Context, r *rand.Rand, w int) error {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", l.t.POP3)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	status := func() (string, error) {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(line, "+OK") {
			if strings.Contains(line, "IN-USE") {
				return "", errInUse
			}
			return "", fmt.Errorf("pop3: %s", strings.TrimSpace(line))
		}
		return strings.TrimSpace(line), nil
	}
	cmd := func(s string) (string, error) {
		if _, err := io.WriteString(c, s+"\r\n"); err != nil {
			return "", err
		}
		return status()
	}
	multi := func() ([]byte, error) {
		var b bytes.Buffer
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return nil, err
			}
			if line == ".\r\n" {
				return b.Bytes(), nil
			}
			b.WriteString(strings.TrimPrefix(line, "."))
		}
	}
	if _, err := status(); err != nil {
		return err
	}
	// Mailboxes are spread over the workers so that they rarely collide on
	// the maildrop lock.
	box := l.mailbox(w + r.IntN(l.cfg.Mailboxes/max(1, l.cfg.POP3)+1)*l.cfg.POP3)
	if _, err := cmd("USER " + box); err != nil {
		return err
	}
	if _, err := cmd("PASS x"); err != nil {
		return err
	}
	st, err := cmd("STAT")
	if err != nil {
		return err
	}
	f := strings.Fields(st)
	n := 0
	if len(f) >= 2 {
		n, _ = strconv.Atoi(f[1])
	}
	if _, err := cmd("LIST"); err != nil {
		return err
	}
	if _, err := multi(); err != nil {
		return err
	}
	if n > 0 {
		start := time.Now()
		if _, err := cmd(fmt.Sprintf("RETR %d", 1+r.IntN(n))); err != nil {
			return err
		}
		msg, err := multi()
		if err != nil {
			return err
		}
		l.stats.ok("pop3_retr", time.Since(start))
		l.checkRead("pop3_retr_exact", msg)
	}
	_, err = cmd("QUIT")
	return err
}

// checkRead compares a message read over POP3 or IMAP with what was sent.
func (l *load) checkRead(op string, got []byte) {
	i := bytes.Index(got, []byte("Subject: load "))
	if i < 0 {
		l.stats.fail(op, fmt.Errorf("read a message without a load subject"))
		return
	}
	tok, _, _ := strings.Cut(string(got[i+len("Subject: load "):]), "\r\n")
	l.mu.Lock()
	want, ok := l.accepted[tok]
	if !ok {
		want, ok = l.doubt[tok]
	}
	l.mu.Unlock()
	if !ok {
		return // acknowledged by the server, the 250 not yet seen here
	}
	if !bytes.Equal(got, want) {
		l.stats.fail(op, fmt.Errorf("%s: read %d bytes that differ from the %d sent", tok, len(got), len(want)))
		return
	}
	l.stats.count(op)
}

func (l *load) imapWorker(ctx context.Context, w int) {
	r := l.rng(4000 + w)
	for ctx.Err() == nil {
		start := time.Now()
		err := l.imapSession(ctx, r)
		if ended(ctx) {
			return
		}
		if err != nil {
			l.stats.fail("imap_session", err)
			pause(ctx, 50*time.Millisecond)
			continue
		}
		l.stats.ok("imap_session", time.Since(start))
	}
}

func (l *load) imapSession(ctx context.Context, r *rand.Rand) error {
	c, err := imapclient.DialInsecure(l.t.IMAP, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(l.mailbox(r.IntN(l.cfg.Mailboxes)), "x").Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if n := sel.NumMessages; n > 0 {
		start := time.Now()
		var set imap.SeqSet
		set.AddRange(1, n)
		if _, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true}).Collect(); err != nil {
			return fmt.Errorf("fetch flags: %w", err)
		}
		l.stats.ok("imap_fetch_list", time.Since(start))
		start = time.Now()
		one := imap.SeqSetNum(1 + uint32(r.IntN(int(n))))
		msgs, err := c.Fetch(one, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return fmt.Errorf("fetch body: %w", err)
		}
		l.stats.ok("imap_fetch_body", time.Since(start))
		for _, m := range msgs {
			for _, s := range m.BodySection {
				l.checkRead("imap_fetch_exact", s.Bytes)
			}
		}
	}
	return c.Logout().Wait()
}

// VerifyResult is the read-back check of every acknowledged message.
type VerifyResult struct {
	Accepted, Exact       int
	Missing, Duplicated   []string
	Corrupted, Unreadable []string
	// Doubtful messages (the connection broke after DATA began) may be
	// stored or not, but at most once and intact.
	Doubtful, DoubtfulStored int
	DoubtfulBad              []string
}

// OK reports whether nothing acknowledged was lost, duplicated or changed.
func (v VerifyResult) OK() bool {
	return v.Accepted == v.Exact && len(v.Missing)+len(v.Duplicated)+len(v.Corrupted)+len(v.Unreadable)+len(v.DoubtfulBad) == 0
}

func (v VerifyResult) print(w io.Writer) {
	fmt.Fprintf(w, "verify: %d acknowledged, %d present exactly once byte for byte; missing %d, duplicated %d, corrupted %d, unreadable %d\n",
		v.Accepted, v.Exact, len(v.Missing), len(v.Duplicated), len(v.Corrupted), len(v.Unreadable))
	if v.Doubtful > 0 {
		fmt.Fprintf(w, "verify: %d in doubt (connection broke during DATA): %d stored intact, %d stored wrongly\n",
			v.Doubtful, v.DoubtfulStored, len(v.DoubtfulBad))
	}
	for _, x := range [][]string{v.Missing, v.Duplicated, v.Corrupted, v.Unreadable, v.DoubtfulBad} {
		for i, s := range x {
			if i == 5 {
				fmt.Fprintf(w, "  … %d more\n", len(x)-5)
				break
			}
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
}

// store1000 is the page size verify lists mail with (the API's maximum).
const store1000 = 1000

// verify finds every acknowledged (and doubtful) message by the token in
// its subject and compares its raw bytes with what was sent.
func (l *load) verify(ctx context.Context) VerifyResult {
	type job struct {
		tok   string
		raw   []byte
		sure  bool
		found int
		err   error
		exact bool
	}
	l.mu.Lock()
	var jobs []*job
	for tok, raw := range l.accepted {
		jobs = append(jobs, &job{tok: tok, raw: raw, sure: true})
	}
	for tok, raw := range l.doubt {
		if _, ok := l.accepted[tok]; !ok {
			jobs = append(jobs, &job{tok: tok, raw: raw})
		}
	}
	l.mu.Unlock()
	// One pass over all mail (pages of 1000) finds where each token is
	// stored; searching token by token would scan the store once per
	// message.
	where := map[string][]string{}
	var listErr error
	for offset := 0; ; offset += store1000 {
		var page summaryList
		code, err := l.getJSON(ctx, fmt.Sprintf("/api/v1/messages/search?limit=%d&offset=%d", store1000, offset), &page)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("list: status %d", code)
		}
		if err != nil {
			listErr = err
			break
		}
		for _, m := range page.Messages {
			if tok, ok := strings.CutPrefix(m.Subject, "load "); ok {
				where[tok] = append(where[tok], m.ID)
			}
		}
		if len(page.Messages) == 0 || offset+len(page.Messages) >= page.Total {
			break
		}
	}
	ch := make(chan *job)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if listErr != nil {
					j.err = listErr
					continue
				}
				ids := where[j.tok]
				j.found = len(ids)
				if len(ids) != 1 {
					continue
				}
				raw, code, err := l.getRaw(ctx, ids[0])
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("raw: status %d", code)
				}
				j.err = err
				j.exact = err == nil && bytes.Equal(raw, j.raw)
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	var v VerifyResult
	for _, j := range jobs {
		if !j.sure {
			v.Doubtful++
			switch {
			case j.err != nil:
				v.DoubtfulBad = append(v.DoubtfulBad, fmt.Sprintf("%s (in doubt): %v", j.tok, j.err))
			case j.found > 1:
				v.DoubtfulBad = append(v.DoubtfulBad, fmt.Sprintf("%s (in doubt): stored %d times", j.tok, j.found))
			case j.found == 1 && !j.exact:
				v.DoubtfulBad = append(v.DoubtfulBad, fmt.Sprintf("%s (in doubt): stored bytes differ", j.tok))
			case j.found == 1:
				v.DoubtfulStored++
			}
			continue
		}
		v.Accepted++
		switch {
		case j.err != nil:
			v.Unreadable = append(v.Unreadable, fmt.Sprintf("%s: %v", j.tok, j.err))
		case j.found == 0:
			v.Missing = append(v.Missing, j.tok)
		case j.found > 1:
			v.Duplicated = append(v.Duplicated, fmt.Sprintf("%s: stored %d times", j.tok, j.found))
		case !j.exact:
			v.Corrupted = append(v.Corrupted, j.tok)
		default:
			v.Exact++
		}
	}
	for _, s := range [][]string{v.Missing, v.Duplicated, v.Corrupted, v.Unreadable, v.DoubtfulBad} {
		sort.Strings(s)
	}
	return v
}

func (l *load) report(elapsed time.Duration, ops map[string]OpStats, errs int, rss int64, inProcess bool) {
	w := l.out
	l.mu.Lock()
	n := len(l.accepted)
	var bytesSent int64
	for _, raw := range l.accepted {
		bytesSent += int64(len(raw))
	}
	l.mu.Unlock()
	secs := elapsed.Seconds()
	fmt.Fprintf(w, "load: %s, %d SMTP senders, %d REST readers, %d waiters, %d POP3, %d IMAP, %d mailboxes, ~%d-byte messages\n",
		elapsed.Round(time.Millisecond), l.cfg.SMTPConns, l.cfg.Readers, l.cfg.Waiters, l.cfg.POP3, l.cfg.IMAP, l.cfg.Mailboxes, l.cfg.Size)
	fmt.Fprintf(w, "throughput: %d messages acknowledged (%.1f msg/s, %.2f MiB/s), %d errors\n",
		n, float64(n)/secs, float64(bytesSent)/secs/(1<<20), errs)
	fmt.Fprintf(w, "%-20s %8s %7s %9s %9s %9s %9s\n", "operation", "count", "errors", "ops/s", "p50", "p99", "max")
	names := make([]string, 0, len(ops))
	for k := range ops {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		o := ops[k]
		fmt.Fprintf(w, "%-20s %8d %7d %9.1f %9s %9s %9s\n", k, o.Count, o.Errors, float64(o.Count)/secs,
			fmtDur(o.P50), fmtDur(o.P99), fmtDur(o.Max))
	}
	switch {
	case rss > 0 && inProcess:
		fmt.Fprintf(w, "peak RSS: %.1f MiB (VmHWM of this process: the in-process sandbox plus the load generator)\n", float64(rss)/(1<<20))
	case rss > 0:
		fmt.Fprintf(w, "peak RSS: %.1f MiB (VmHWM of the sandbox process)\n", float64(rss)/(1<<20))
	default:
		fmt.Fprintf(w, "peak RSS: unknown (pass --target-pid)\n")
	}
	l.stats.printErrors(w)
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// peakRSS reads VmHWM (bytes) of /proc/<pid>/status; 0 when unknown.
func peakRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// stats collects latencies and errors per operation.
type stats struct {
	// killed is set in crash mode while the sandbox is being killed:
	// failures then are expected and counted apart.
	killed atomic.Bool

	mu     sync.Mutex
	lat    map[string][]time.Duration
	errs   map[string]int
	counts map[string]int
	first  map[string]string // first error text per operation
}

func newStats() *stats {
	return &stats{lat: map[string][]time.Duration{}, errs: map[string]int{}, counts: map[string]int{}, first: map[string]string{}}
}

func (s *stats) ok(op string, d time.Duration) {
	s.mu.Lock()
	s.lat[op] = append(s.lat[op], d)
	s.mu.Unlock()
}

func (s *stats) count(op string) {
	s.mu.Lock()
	s.counts[op]++
	s.mu.Unlock()
}

func (s *stats) fail(op string, err error) {
	if s.killed.Load() {
		s.count("failed_during_kill")
		return
	}
	s.mu.Lock()
	s.errs[op]++
	if _, ok := s.first[op]; !ok {
		s.first[op] = err.Error()
	}
	s.mu.Unlock()
}

func (s *stats) summary() (map[string]OpStats, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]OpStats{}
	total := 0
	for op, n := range s.errs {
		o := out[op]
		o.Errors = n
		out[op] = o
		total += n
	}
	for op, n := range s.counts {
		o := out[op]
		o.Count += n
		out[op] = o
	}
	for op, ds := range s.lat {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		o := out[op]
		o.Count += len(ds)
		if len(ds) > 0 {
			o.P50 = ds[len(ds)*50/100]
			o.P99 = ds[min(len(ds)-1, len(ds)*99/100)]
			o.Max = ds[len(ds)-1]
		}
		out[op] = o
	}
	return out, total
}

func (s *stats) printErrors(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := make([]string, 0, len(s.first))
	for op := range s.first {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		fmt.Fprintf(w, "first %s error: %s\n", op, s.first[op])
	}
}

// ended reports whether the load is over. A dial or read that fails because
// the run's deadline passed can return before ctx.Err() is set (the two
// timers fire independently), so the deadline itself is checked too.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}
