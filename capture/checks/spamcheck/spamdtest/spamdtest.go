// Package spamdtest starts a real spamd on loopback for tests (once per
// test binary, from TestMain: loading the rules takes seconds).
package spamdtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Start runs spamd on a free loopback port and waits until it answers.
// It returns the address and a stop func, or an error naming what is
// missing (spamd comes with Debian's spamassassin/spamd packages).
func Start() (addr string, stop func(), err error) {
	bin, err := exec.LookPath("spamd")
	if err != nil {
		return "", nil, errors.New("spamd is not installed (Debian packages spamassassin, spamd)")
	}
	dir, err := os.MkdirTemp("", "spamdtest")
	if err != nil {
		return "", nil, err
	}
	// spamd takes a port, not a listener: pick a free one, and try again
	// if another process takes it in between.
	var lastErr error
	for try := 0; try < 3; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args := []string{"--listen", addr, "--local", "--nouser-config", "--max-children", "1", "--min-children", "1",
			"--syslog", "stderr", "--pidfile", filepath.Join(dir, "spamd.pid")}
		if os.Geteuid() == 0 {
			args = append(args, "--username", "nobody")
		}
		cmd := exec.Command(bin, args...)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("start spamd: %w", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop = func() {
			// spamd forks children: signal its process group, which is
			// ours alone (Setpgid).
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			os.RemoveAll(dir)
		}
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				lastErr = fmt.Errorf("spamd exited: %s", bytes.TrimSpace(log.Bytes()))
			default:
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					// The first check makes its child load and compile the
					// rules (seconds on a busy machine): pay that here, not
					// inside a test's own check and its timeout.
					if err := warmUp(addr, time.Until(deadline)); err != nil {
						lastErr = err
						break
					}
					return addr, stop, nil
				}
				time.Sleep(200 * time.Millisecond)
				continue
			}
			break
		}
		stop()
		if lastErr == nil {
			lastErr = errors.New("spamd did not listen within 60s")
		}
	}
	os.RemoveAll(dir)
	return "", nil, lastErr
}

// warmUp sends spamd one small CHECK and reads its whole answer.
func warmUp(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return fmt.Errorf("warm up spamd: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	msg := "Subject: warm-up\r\n\r\nhello\r\n"
	if _, err := fmt.Fprintf(c, "CHECK SPAMC/1.5\r\nContent-length: %d\r\n\r\n%s", len(msg), msg); err != nil {
		return fmt.Errorf("warm up spamd: %w", err)
	}
	if _, err := io.ReadAll(c); err != nil {
		return fmt.Errorf("warm up spamd: %w", err)
	}
	return nil
}

// RunTests is a package's TestMain body: it starts the one spamd the
// package's tests share and stores its address in *addr, runs the tests,
// stops spamd and exits. Without spamd *addr stays "" and the tests that
// need it skip (need.Spamd), except under CI=true, where the package fails
// at once naming what is missing.
func RunTests(m *testing.M, pkg string, addr *string) {
	a, stop, err := Start()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "%s: CI needs spamd: %v\n", pkg, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "%s: tests against spamd skip: %v\n", pkg, err)
	}
	*addr = a
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}
