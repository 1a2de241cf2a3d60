// Command mailsandbox-load puts a sandbox under a bounded, loopback-only
// load and then proves that nothing acknowledged was lost.
//
// It mixes SMTP senders (each reusing its connection for many messages),
// REST readers (list, search, get), wait callers (GET /messages/wait),
// POP3 sessions and IMAP sessions for --duration, then reads every message
// that got a 250 back through REST (found by the unique token in its
// subject) and compares the raw bytes. It prints throughput, error counts,
// p50/p99 latencies per operation and the sandbox's peak RSS.
//
// By default it starts an in-process sandbox (cmd/sandbox) on a SQLite file
// in a temporary directory; --target points it at a running one instead.
//
// With --crash N it runs the mailsandbox binary as a child process on a
// SQLite file, SIGKILLs it at random points under load N times, restarts
// it, and checks that every message acknowledged with 250 is stored
// exactly once, byte for byte, and that the SQLite file passes
// PRAGMA integrity_check after each kill.
//
//	go run ./cmd/mailsandbox-load --duration 2m --smtp-conns 8 --readers 4
//	go run ./cmd/mailsandbox-load --crash 10 --duration 2m
//	go run ./cmd/mailsandbox-load --target smtp=127.0.0.1:1025,http=127.0.0.1:8025,pop3=127.0.0.1:1110,imap=127.0.0.1:1143
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "mailsandbox-load: %v\n", err)
		return 2
	}
	cfg.Out = stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var failed bool
	if cfg.Crash > 0 {
		res, err := runCrash(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "mailsandbox-load: %v\n", err)
			return 1
		}
		failed = !res.OK()
	} else {
		res, err := runLoad(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "mailsandbox-load: %v\n", err)
			return 1
		}
		failed = !res.OK()
	}
	if failed {
		fmt.Fprintln(stderr, "mailsandbox-load: FAILED: acknowledged mail missing, duplicated or corrupted, or store damaged")
		return 1
	}
	return 0
}

// Config is one run's settings.
type Config struct {
	Duration    time.Duration // how long the load runs (crash mode: at most, one round per kill)
	SMTPConns   int           // concurrent SMTP senders
	Size        int           // approximate message size in bytes
	Readers     int           // REST readers
	Waiters     int           // GET /messages/wait callers
	POP3        int           // concurrent POP3 sessions
	IMAP        int           // concurrent IMAP sessions
	Mailboxes   int           // distinct recipient mailboxes
	MaxMessages int           // stop sending after this many messages
	Target      Targets       // a running sandbox; zero: start one
	TargetPID   int           // its pid, for peak RSS; 0: unknown
	DB          string        // store for the in-process or child sandbox; "": a file in a temp dir
	Crash       int           // crash mode: number of SIGKILLs; 0: plain load
	Binary      string        // crash mode: the mailsandbox binary; "": go build it
	Seed        int64         // random seed; 0: time-based
	Out         io.Writer     // report; nil: discard
}

// Targets are the addresses of a running sandbox.
type Targets struct {
	SMTP, HTTP, POP3, IMAP string
}

func (t Targets) zero() bool { return t == Targets{} }

func parseTargets(s string) (Targets, error) {
	var t Targets
	if s == "" {
		return t, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return t, fmt.Errorf("--target: want name=host:port, got %q", kv)
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			return t, fmt.Errorf("--target: %s: want host:port, got %q", k, v)
		}
		if !loopback(v) {
			return t, fmt.Errorf("--target: %s: %s is not a loopback address (this tool only loads loopback)", k, v)
		}
		switch k {
		case "smtp":
			t.SMTP = v
		case "http":
			t.HTTP = v
		case "pop3":
			t.POP3 = v
		case "imap":
			t.IMAP = v
		default:
			return t, fmt.Errorf("--target: unknown listener %q (want smtp, http, pop3, imap)", k)
		}
	}
	if t.SMTP == "" || t.HTTP == "" {
		return t, fmt.Errorf("--target: smtp= and http= are required")
	}
	return t, nil
}

func loopback(hostport string) bool {
	host, _, _ := net.SplitHostPort(hostport)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("mailsandbox-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var target string
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long to run the load (crash mode: at most, split into one round per kill, each killed at a random point)")
	fs.IntVar(&cfg.SMTPConns, "smtp-conns", 4, "concurrent SMTP senders, each reusing its connection")
	fs.IntVar(&cfg.Size, "size", 4096, "approximate message size in bytes")
	fs.IntVar(&cfg.Readers, "readers", 2, "concurrent REST readers (list, search, get)")
	fs.IntVar(&cfg.Waiters, "waiters", 1, "concurrent GET /messages/wait callers")
	fs.IntVar(&cfg.POP3, "pop3", 1, "concurrent POP3 sessions")
	fs.IntVar(&cfg.IMAP, "imap", 1, "concurrent IMAP sessions")
	fs.IntVar(&cfg.Mailboxes, "mailboxes", 20, "distinct recipient mailboxes")
	fs.IntVar(&cfg.MaxMessages, "max-messages", 1000000, "stop sending after this many messages")
	fs.StringVar(&target, "target", "", "a running sandbox: smtp=H:P,http=H:P[,pop3=H:P][,imap=H:P] (loopback only); default: start one in-process")
	fs.IntVar(&cfg.TargetPID, "target-pid", 0, "pid of the --target sandbox, to report its peak RSS")
	fs.StringVar(&cfg.DB, "db", "", "SQLite file for the sandbox this tool starts (default: in a temporary directory)")
	fs.IntVar(&cfg.Crash, "crash", 0, "crash mode: SIGKILL the sandbox (a child process) this many times under load")
	fs.StringVar(&cfg.Binary, "binary", "", "crash mode: the mailsandbox binary (default: go build ./cmd/mailsandbox)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "random seed (default: from the clock)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Target, err = parseTargets(target); err != nil {
		return cfg, err
	}
	switch {
	case cfg.Duration <= 0:
		return cfg, fmt.Errorf("--duration: must be positive")
	case cfg.SMTPConns < 1:
		return cfg, fmt.Errorf("--smtp-conns: at least 1")
	case cfg.Size < 0 || cfg.Size > 32<<20:
		return cfg, fmt.Errorf("--size: between 0 and 32 MiB")
	case cfg.Readers < 0 || cfg.Waiters < 0 || cfg.POP3 < 0 || cfg.IMAP < 0:
		return cfg, fmt.Errorf("--readers, --waiters, --pop3, --imap: must not be negative")
	case cfg.Mailboxes < 1:
		return cfg, fmt.Errorf("--mailboxes: at least 1")
	case cfg.MaxMessages < 1:
		return cfg, fmt.Errorf("--max-messages: at least 1")
	case cfg.Crash < 0:
		return cfg, fmt.Errorf("--crash: must not be negative")
	case cfg.Crash > 0 && !cfg.Target.zero():
		return cfg, fmt.Errorf("--crash: starts its own sandbox; do not combine with --target")
	}
	return cfg, nil
}
