// Command mailsandbox runs the mail testing sandbox, and offers a sendmail
// drop-in and a health check for containers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// shutdownGrace is how long SIGTERM waits for sessions in flight.
const shutdownGrace = 8 * time.Second

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	if name, ok := asSendmail(os.Args[0]); ok {
		os.Exit(runSendmail(name, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		cmd = "version" // what people type first
	}
	switch cmd {
	case "run":
		return serve(args, stdout, stderr)
	case "sendmail":
		return runSendmail("sendmail", args, stdin, stdout, stderr)
	case "healthcheck":
		return healthcheck(stderr)
	case "version":
		fmt.Fprintln(stdout, "mailsandbox", versionString())
		return 0
	case "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "mailsandbox: unknown command %q (run, sendmail, healthcheck, version, help)\n", cmd)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

func serve(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			usage(stdout)
			return 0
		}
	}
	rf, err := parseRun(args, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "mailsandbox: %v\n", err)
		return 2
	}
	log := newLogger(stderr, rf.logLevel, rf.logFormat)
	rf.cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sb, err := sandbox.Start(ctx, rf.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "mailsandbox: %s\n", rf.explain(err))
		var ce *sandbox.ConfigError
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	log.Info("mailsandbox started", "version", versionString(), "smtp", sb.SMTPAddr(), "http", sb.URL(), "pop3", sb.POP3Addr(), "imap", sb.IMAPAddr())
	logReadyLines(log, sb)
	if w := mailpitWarning(os.Environ(), rf); w != "" {
		log.Warn(w)
	}
	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-sb.Err():
		log.Error("a listener failed; shutting down", "err", err)
		code = 1
	}
	stop()
	// Sessions in flight get a grace period shorter than the 10 s that
	// docker stop waits before SIGKILL, so a container still exits 0 and
	// closes its store when a client idles on a connection.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := sb.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		code = 1
	}
	return code
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// healthcheck is for container HEALTHCHECKs, where no curl exists.
func healthcheck(stderr io.Writer) int {
	addr := os.Getenv(envName("http-addr"))
	if addr == "" {
		addr = sandbox.DefaultConfig().HTTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: bad %s %q\n", envName("http-addr"), addr)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + healthPath())
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: /healthz answered %s\n", resp.Status)
		return 1
	}
	return 0
}
