// Command skipcheck reads `go test -json` on stdin, prints what plain
// `go test` would (failing tests' output, each package's ok/FAIL line), and
// fails when a test skipped without being on the allow-list: in CI a skip
// would otherwise hide a test that never ran.
//
//	go build -o /tmp/skipcheck ./.ci/skipcheck
//	go test -race -json ./... | /tmp/skipcheck -allow .ci/allowed-skips
//
// The allow-list has one `package TestName  # why` per line (package
// relative to the module, e.g. cmd/sandbox; TestName also covers its
// subtests); every entry needs its reason.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	allowPath := flag.String("allow", ".ci/allowed-skips", "allow-list of tests that may skip")
	module := flag.String("module", "github.com/mailsandbox/mailsandbox", "module path the allow-list's packages are relative to")
	flag.Parse()
	f, err := os.Open(*allowPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "skipcheck: %v\n", err)
		os.Exit(2)
	}
	allow, err := parseAllow(f, *module)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "skipcheck: %s: %v\n", *allowPath, err)
		os.Exit(2)
	}
	if !check(os.Stdin, os.Stdout, allow, *allowPath) {
		os.Exit(1)
	}
}

// allowList maps "importpath TestName" to the reason given.
type allowList map[string]string

func parseAllow(r io.Reader, module string) (allowList, error) {
	a := allowList{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entry, why, _ := strings.Cut(line, "#")
		f := strings.Fields(entry)
		if len(f) != 2 || !strings.HasPrefix(f[1], "Test") {
			return nil, fmt.Errorf("line %d: want `package TestName  # why`, got %q", n, line)
		}
		if strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("line %d: %s %s has no reason (add `# why`)", n, f[0], f[1])
		}
		pkg := f[0]
		if pkg != module && !strings.HasPrefix(pkg, module+"/") {
			pkg = module + "/" + strings.TrimPrefix(pkg, "./")
		}
		a[pkg+" "+f[1]] = strings.TrimSpace(why)
	}
	return a, sc.Err()
}

// allowed reports whether test (maybe a subtest) of pkg may skip.
func (a allowList) allowed(pkg, test string) bool {
	top, _, _ := strings.Cut(test, "/")
	_, ok := a[pkg+" "+top]
	return ok
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// pkgState is what is kept of a package until it ends.
type pkgState struct {
	tests  map[string][]string // output of tests still running
	order  []string            // tests in start order, to flush on a crash
	lines  []string            // package-level output (ok/FAIL lines, TestMain prints)
	banned []string            // skips not on the allow-list, with their reason
}

// check copies the stream to out as plain go test prints it and returns
// false when a package failed or a test skipped without being allowed.
func check(in io.Reader, out io.Writer, allow allowList, allowName string) bool {
	pkgs := map[string]*pkgState{}
	get := func(p string) *pkgState {
		s := pkgs[p]
		if s == nil {
			s = &pkgState{tests: map[string][]string{}}
			pkgs[p] = s
		}
		return s
	}
	ok, sawEvent, banned := true, false, 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, sc.Text()) // not JSON: go itself complaining
			continue
		}
		sawEvent = true
		switch {
		case e.Action == "build-output" || e.Action == "build-fail":
			fmt.Fprint(out, e.Output)
			if e.Action == "build-fail" {
				ok = false
			}
		case e.Test != "":
			s := get(e.Package)
			switch e.Action {
			case "run":
				s.order = append(s.order, e.Test)
			case "output":
				if !strings.HasPrefix(strings.TrimSpace(e.Output), "=== ") {
					s.tests[e.Test] = append(s.tests[e.Test], e.Output)
				}
			case "fail":
				fmt.Fprint(out, strings.Join(s.tests[e.Test], ""))
				delete(s.tests, e.Test)
			case "skip":
				if !allow.allowed(e.Package, e.Test) {
					s.banned = append(s.banned, fmt.Sprintf("--- SKIP not allowed (add it to %s with a reason, or make it run): %s\n%s",
						allowName, e.Test, indent(s.tests[e.Test])))
				}
				delete(s.tests, e.Test)
			case "pass":
				delete(s.tests, e.Test)
			}
		case e.Action == "output":
			if e.Output != "PASS\n" {
				get(e.Package).lines = append(get(e.Package).lines, e.Output)
			}
		case e.Action == "pass" || e.Action == "fail" || e.Action == "skip":
			s := get(e.Package)
			if e.Action == "fail" {
				ok = false
				for _, t := range s.order { // a crash or timeout: show what was running
					fmt.Fprint(out, strings.Join(s.tests[t], ""))
				}
			}
			for _, b := range s.banned {
				fmt.Fprint(out, b)
			}
			banned += len(s.banned)
			fmt.Fprint(out, strings.Join(s.lines, ""))
			delete(pkgs, e.Package)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "skipcheck: reading go test output: %v\n", err)
		ok = false
	}
	if !sawEvent {
		fmt.Fprintln(out, "skipcheck: no go test -json events on stdin")
		ok = false
	}
	// Packages that never ended (go test killed): show what they had.
	var left []string
	for p := range pkgs {
		left = append(left, p)
	}
	sort.Strings(left)
	for _, p := range left {
		s := pkgs[p]
		for _, t := range s.order {
			fmt.Fprint(out, strings.Join(s.tests[t], ""))
		}
		fmt.Fprint(out, strings.Join(s.lines, ""))
		fmt.Fprintf(out, "FAIL\t%s\t(no end: go test stopped)\n", p)
		ok = false
	}
	if banned > 0 {
		fmt.Fprintf(out, "FAIL\tskipcheck: %d skipped test(s) not on %s (listed above each package's line)\n", banned, allowName)
		return false
	}
	if !ok {
		fmt.Fprintln(out, "FAIL")
	}
	return ok
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("    " + strings.TrimLeft(l, " "))
	}
	return b.String()
}
