package need

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// How the summary reaches the end of `go test ./...` (Linux; elsewhere
// each skip's own message, shown by go test -v, still names the command):
//
//   - The test binaries of one run are children of one go command, so
//     Skip records its group as a file in a directory named after that
//     process (pid and start time, so a reused pid starts afresh).
//   - go test prints packages' results in import-path order, and (Go 1.24
//     and later) starts their test binaries in that order too. The package
//     whose path sorts last in the module (zz/skipsummary, a test checks it
//     is last) calls Summarize from its TestMain: when it runs, every other
//     package's binary has been started or was cached. It waits until the
//     go command has no other child and has stopped using CPU (it has
//     printed every earlier package's line and waits only for us), then
//     prints the groups once. go test then prints that package's own ok
//     line, the last line of the run.
//   - go test hides a passing package's output, so the summary goes to the
//     go command's standard output (a terminal or pipe; its standard error
//     when stdout is a file, as a second opener of a file would write at
//     the wrong offset). Under go test -json it is the package's own
//     output, so the stream stays JSON and .ci/skipcheck shows it.
//   - go test caches a passing package's result, and a cached package
//     runs nothing, so it would record nothing. A test that skips (unless
//     it is parallel: the working directory is the whole process's) visits
//     /proc/<go pid> with t.Chdir; go test notes the directory as an input,
//     and as that directory is gone once the go command has exited, the
//     next run finds it changed and reruns the package, which records its
//     skips again (and runs the tests once the tool is installed). The
//     summary package's test calls NotCached to stay uncached too.

// invocation returns the go command running this test binary and the
// directory where this run's skipped groups are recorded; ok is false
// when go test is not the parent (a binary run by hand, -exec, no /proc).
func invocation() (goPid int, dir string, ok bool) {
	goPid = os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", goPid))
	if err != nil || filepath.Base(exe) != "go" {
		return 0, "", false
	}
	start := procStat(goPid, 19) // starttime
	if start == "" {
		return 0, "", false
	}
	return goPid, filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-%s", dirPrefix, goPid, start)), true
}

const dirPrefix = "mailsandbox-skips-"

// record notes that g was skipped in this go test run, for Summarize, and
// returns the go command's pid (0 when not run by go test). Errors are
// ignored: the skip message itself still names the command.
func record(g Group) int {
	goPid, dir, ok := invocation()
	if !ok {
		return 0
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return goPid
	}
	// One file per group; several packages skipping it write the same
	// bytes. Renamed into place so a reader never sees half a file.
	name := filepath.Join(dir, fileName(g.Name))
	tmp := fmt.Sprintf("%s.%d.tmp", name, os.Getpid())
	if err := os.WriteFile(tmp, []byte(g.Name+"\t"+g.Enable+"\n"), 0o600); err != nil {
		return goPid
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
	}
	return goPid
}

// NotCached keeps t's package from being a cached result in the next go
// test run (see uncache); the summary package must run every time. Call it
// last: t's working directory is /proc/<go pid> until t ends.
func NotCached(t *testing.T) {
	if goPid, _, ok := invocation(); ok {
		uncache(t, goPid)
	}
}

// uncache makes go test see the go command's /proc directory as an input
// of t's package, so its result is not reused from the cache (see above).
// A parallel test cannot change directory: t.Chdir refuses before
// changing anything, and that test's skip may then come from the cache.
func uncache(t testing.TB, goPid int) {
	defer func() {
		if r := recover(); r != nil && !strings.Contains(fmt.Sprint(r), "Parallel") {
			panic(r)
		}
	}()
	t.Chdir(fmt.Sprintf("/proc/%d", goPid))
}

func fileName(group string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, group)
}

// Summarize is the TestMain of the package that sorts last in the module:
// it runs the package's tests, then prints once which groups the whole
// `go test` run skipped and the command that enables each.
func Summarize(m *testing.M) {
	code := m.Run()
	summarize()
	os.Exit(code)
}

func summarize() {
	goPid, dir, ok := invocation()
	if !ok || CI() { // under CI a missing group fails instead of skipping: nothing to wait for
		return
	}
	json := testJSON()
	var out io.Writer = os.Stdout
	if !json {
		f := goOutput(goPid)
		if f == nil {
			return
		}
		defer f.Close()
		out = f
	}
	if !waitForOthers(goPid, deadline()) {
		return // go test's own time limit is near: say nothing rather than mid-run
	}
	groups := readGroups(dir)
	os.RemoveAll(dir)
	removeStale()
	if len(groups) > 0 {
		// One write, so it cannot interleave with another writer's line.
		io.WriteString(out, summaryText(groups))
	}
}

// summaryText is the summary printed at the end of the run.
func summaryText(groups [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "skipped here: %d group(s) of tests (go test -v shows each skip and why); to run them:\n", len(groups))
	for _, g := range groups {
		fmt.Fprintf(&b, "  %s: %s\n", g[0], g[1])
	}
	return b.String()
}

// readGroups returns the recorded groups (name, command), sorted by name.
func readGroups(dir string) [][2]string {
	ents, _ := os.ReadDir(dir)
	var groups [][2]string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		name, enable, ok := strings.Cut(strings.TrimSuffix(string(b), "\n"), "\t")
		if ok {
			groups = append(groups, [2]string{name, enable})
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i][0] < groups[j][0] })
	return groups
}

// testJSON reports whether go test -json runs this binary: its output is
// then an event stream that must stay JSON.
func testJSON() bool {
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.v=test2json") {
			return true
		}
	}
	return false
}

// goOutput opens what the go command prints to: its standard output when
// that is a terminal or a pipe, else its standard error when that is one.
// A regular file is refused: a second opener writes at its own offset and
// go test's later lines would overwrite ours.
func goOutput(goPid int) *os.File {
	for _, fd := range []int{1, 2} {
		p := fmt.Sprintf("/proc/%d/fd/%d", goPid, fd)
		if fi, err := os.Stat(p); err != nil || fi.Mode().IsRegular() {
			continue
		}
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			return f
		}
	}
	return nil
}

// deadline is when this binary's -test.timeout (if any) runs out, less a
// margin; go test kills a binary that outlives it.
func deadline() time.Time {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return time.Time{}
	}
	d, err := time.ParseDuration(f.Value.String())
	if err != nil || d <= 0 {
		return time.Time{}
	}
	return processStart.Add(d - d/10)
}

var processStart = time.Now()

// waitForOthers returns once the go command has no child but this process
// and its CPU time has not moved for a while: every other test binary has
// exited and go has printed its line. (A package whose binary has not
// started yet is impossible: go starts them in print order, ours last;
// while go still works on one, a compile, a vet, or the cache, its CPU
// time moves.) It polls /proc: nothing notifies a non-parent of a
// sibling's exit. False when the deadline came first.
func waitForOthers(goPid int, until time.Time) bool {
	const poll, still = 50 * time.Millisecond, 10 // 0.5 s of quiet
	self, quiet, last := os.Getpid(), 0, ""
	for quiet < still {
		if !until.IsZero() && time.Now().After(until) {
			return false
		}
		time.Sleep(poll)
		cpu := procStat(goPid, 11) + "+" + procStat(goPid, 12) // utime+stime
		if otherChild(goPid, self) || cpu != last {
			quiet = 0
		} else {
			quiet++
		}
		last = cpu
	}
	return true
}

// otherChild reports whether goPid has a child other than self.
func otherChild(goPid, self int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := strconv.Itoa(goPid)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if procStat(pid, 1) == want { // ppid
			return true
		}
	}
	return false
}

// removeStale removes record directories of go commands that are gone
// (runs of a single package, which has no summary, leave theirs).
func removeStale() {
	ents, _ := os.ReadDir(os.TempDir())
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok {
			continue
		}
		pid, start, _ := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		if procStat(n, 19) != start {
			os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}

// procStat returns field i (0-based, counted after the command name: 0 is
// the state, 1 the ppid, 11 utime, 12 stime, 19 starttime) of
// /proc/<pid>/stat, or "".
func procStat(pid, i int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	j := bytes.LastIndexByte(b, ')')
	if j < 0 {
		return ""
	}
	f := strings.Fields(string(b[j+1:]))
	if i >= len(f) {
		return ""
	}
	return f[i]
}
