package need

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// announce prints "skipped: <group> — to run: <command>" once per group per
// `go test` invocation. go test hides the output of passing packages, so
// the line goes to the go command's own standard output (its
// /proc/<ppid>/fd/1, Linux only); a marker file per group in a directory
// named after the go process (pid and start time) makes it once across the
// parallel test binaries. Anywhere this does not hold (another OS, a test
// binary run by hand, go test -json whose stream must stay JSON) it prints
// nothing: the skip message itself still names the command. The marker
// goes first, so two binaries racing for a group print it once.
func announce(g Group) {
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.v=test2json") {
			return
		}
	}
	ppid := os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || filepath.Base(exe) != "go" {
		return
	}
	start := procStart(ppid)
	if start == "" {
		return
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("mailsandbox-skips-%d-%s", ppid, start))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	marker := filepath.Join(dir, strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, g.Name))
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return // another package announced it already
	}
	f.Close()
	// A terminal or a pipe only: reopening a regular file gives a new
	// offset, and go test's own later writes would overwrite the line.
	target := fmt.Sprintf("/proc/%d/fd/1", ppid)
	if fi, err := os.Stat(target); err != nil || fi.Mode().IsRegular() {
		return
	}
	out, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer out.Close()
	// One write per line, so it does not interleave with go test's lines.
	out.WriteString("skipped: " + g.Name + " tests; to run them: " + g.Enable + "\n")
}

// procStart is the start time (clock ticks since boot) of process pid, so a
// reused pid gets a fresh marker directory.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	// Fields after the command: state is field 3; starttime is field 22.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	if _, err := strconv.ParseUint(f[19], 10, 64); err != nil {
		return ""
	}
	return f[19]
}
