package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for PRAGMA integrity_check
)

// CrashResult is what crash mode saw.
type CrashResult struct {
	Kills     int
	Integrity []string // integrity_check result after each kill and at the end
	PeakRSS   int64    // highest VmHWM of any child
	Verify    VerifyResult
	Errors    int
}

// OK reports whether every acknowledged message survived intact and the
// store was sound after every kill.
func (r CrashResult) OK() bool {
	for _, s := range r.Integrity {
		if s != "ok" {
			return false
		}
	}
	return r.Verify.OK()
}

// child is a mailsandbox process.
type child struct {
	cmd    *exec.Cmd
	t      Targets
	exited chan struct{}
}

// startChild runs bin on db with every listener on a free loopback port
// and waits until it has logged its addresses and answers /healthz.
func startChild(ctx context.Context, bin, db string) (*child, error) {
	cmd := exec.Command(bin, "--smtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--pop3-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0", "--db", db, "--log-format", "text")
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	addrs := map[string]string{}
	re := regexp.MustCompile(`msg=listening protocol=(\w+) addr=(\S+)`)
	started := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var tail []string
		for sc.Scan() {
			line := sc.Text()
			if m := re.FindStringSubmatch(line); m != nil {
				addrs[m[1]] = m[2]
			}
			if strings.Contains(line, "mailsandbox started") {
				started <- nil
				io.Copy(io.Discard, stderr)
				return
			}
			if tail = append(tail, line); len(tail) > 5 {
				tail = tail[1:]
			}
		}
		started <- fmt.Errorf("child exited before it started: %s", strings.Join(tail, " | "))
	}()
	go func() {
		cmd.Wait()
		close(c.exited)
	}()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case err = <-started:
	case <-timer.C:
		err = errors.New("child did not start within 60s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		c.kill()
		return nil, err
	}
	c.t = Targets{SMTP: addrs["smtp"], HTTP: addrs["http"], POP3: addrs["pop3"], IMAP: addrs["imap"]}
	if c.t.SMTP == "" || c.t.HTTP == "" {
		c.kill()
		return nil, fmt.Errorf("child logged no smtp/http address (%v)", addrs)
	}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + c.t.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 100 {
			c.kill()
			return nil, fmt.Errorf("child never healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

// kill SIGKILLs the child and waits for it to be gone.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop asks the child to shut down and waits (SIGKILL after 20s).
func (c *child) stop() error {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		c.kill()
		return errors.New("child ignored SIGTERM for 20s")
	}
	if st := c.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("child exited with %v", st)
	}
	return nil
}

// buildBinary builds cmd/mailsandbox into dir.
func buildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "mailsandbox")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/mailsandbox/mailsandbox/cmd/mailsandbox")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mailsandbox: %v\n%s", err, out)
	}
	return bin, nil
}

// integrityCheck runs PRAGMA integrity_check and the search index's own
// check on a SQLite file no process is using, and returns the verdict
// ("ok" when sound).
func integrityCheck(ctx context.Context, path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	rows.Close()
	if err := searchIndexCheck(ctx, db); err != nil {
		lines = append(lines, "search index: "+err.Error())
	}
	return strings.Join(lines, "; "), nil
}

// searchIndexCheck checks that the search index agrees with the messages
// table it reads its columns from. The store indexes new messages in
// batches after their commits (search_indexed marks how far), so a killed
// process leaves the newest unindexed, and the next start indexes them:
// the check does the same in a transaction it rolls back, then asks the
// index to check itself (rank 1: against the messages).
func searchIndexCheck(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO msg_search (rowid, search_to, search_from, search_subject)
		SELECT seq, search_to, search_from, search_subject FROM messages WHERE seq > (SELECT upto FROM search_indexed)`); err != nil {
		return fmt.Errorf("index the messages past the mark: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO msg_search (msg_search, rank) VALUES ('integrity-check', 1)`); err != nil {
		return err
	}
	return nil
}

// runCrash kills a child sandbox cfg.Crash times under load, then checks
// every acknowledged message and the store.
func runCrash(ctx context.Context, cfg Config) (CrashResult, error) {
	var res CrashResult
	dir, err := os.MkdirTemp("", "mailsandbox-crash-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	bin := cfg.Binary
	if bin == "" {
		if bin, err = buildBinary(ctx, dir); err != nil {
			return res, err
		}
	}
	db := cfg.DB
	if db == "" {
		db = filepath.Join(dir, "crash.db")
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	l := newLoad(cfg, Targets{})
	rng := rand.New(rand.NewPCG(uint64(l.seed), 42))
	round := cfg.Duration / time.Duration(cfg.Crash)
	var loaded time.Duration // time under load, kills included
	for k := 0; k < cfg.Crash; k++ {
		c, err := startChild(ctx, bin, db)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", k+1, err)
		}
		l.t = c.t
		// Kill somewhere between a tenth of the round and its end.
		after := round/10 + time.Duration(rng.Int64N(int64(round-round/10)+1))
		lctx, cancel := context.WithCancel(ctx)
		roundStart := time.Now()
		done := make(chan struct{})
		go func() {
			l.run(lctx)
			close(done)
		}()
		select {
		case <-time.After(after):
		case <-ctx.Done():
		}
		if rss := peakRSS(strconv.Itoa(c.cmd.Process.Pid)); rss > res.PeakRSS {
			res.PeakRSS = rss
		}
		l.stats.killed.Store(true)
		c.kill()
		res.Kills++
		// Let in-flight clients see the connection die, then stop them.
		time.Sleep(100 * time.Millisecond)
		cancel()
		<-done
		loaded += time.Since(roundStart)
		l.stats.killed.Store(false)
		verdict, err := integrityCheck(ctx, db)
		if err != nil {
			verdict = "error: " + err.Error()
		}
		res.Integrity = append(res.Integrity, verdict)
		l.mu.Lock()
		fmt.Fprintf(out, "kill %d after %s: %d acknowledged so far, %d in doubt; integrity_check: %s\n",
			k+1, after.Round(time.Millisecond), len(l.accepted), len(l.doubt), verdict)
		l.mu.Unlock()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	c, err := startChild(ctx, bin, db)
	if err != nil {
		return res, fmt.Errorf("restart after the last kill: %w", err)
	}
	l.t = c.t
	res.Verify = l.verify(ctx)
	if rss := peakRSS(strconv.Itoa(c.cmd.Process.Pid)); rss > res.PeakRSS {
		res.PeakRSS = rss
	}
	stopErr := c.stop()
	verdict, err := integrityCheck(ctx, db)
	if err != nil {
		verdict = "error: " + err.Error()
	}
	res.Integrity = append(res.Integrity, verdict)
	ops, errs := l.stats.summary()
	res.Errors = errs
	fmt.Fprintf(out, "crash mode: %d kills (failed_during_kill counts operations cut off by a kill; errors are failures at other times)\n", res.Kills)
	l.report(loaded, ops, errs, res.PeakRSS, false)
	fmt.Fprintf(out, "integrity_check after the final graceful stop: %s\n", verdict)
	if stopErr != nil {
		fmt.Fprintf(out, "final stop: %v\n", stopErr)
	}
	res.Verify.print(out)
	return res, nil
}
