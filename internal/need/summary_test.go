package need

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeModule writes a module that uses a copy of this package: a skips
// alpha only after the summary package's binary has started (so the
// summary must wait for it) and beta; b skips beta too; c needs a gamma
// that is there; zz, sorting last, summarizes.
func fakeModule(t *testing.T) (dir, sync string) {
	t.Helper()
	dir, sync = t.TempDir(), t.TempDir()
	files := map[string]string{
		"go.mod": "module fake\n\ngo 1.26\n",
		"g/g.go": `package g

import "fake/internal/need"

var (
	Alpha = need.Group{Name: "alpha", Enable: "apt-get install alpha"}
	Beta  = need.Group{Name: "beta", Enable: "apt-get install beta"}
	Gamma = need.Group{Name: "gamma", Enable: "apt-get install gamma"}
)
`,
		"a/a_test.go": `package a

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"fake/g"
	"fake/internal/need"
)

func TestLateSkip(t *testing.T) {
	started := filepath.Join(os.Getenv("FAKE_SYNC"), "zz-started")
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
	}
	need.Skip(t, g.Alpha, "alpha missing")
}

func TestBeta(t *testing.T) { need.Skip(t, g.Beta, "beta missing") }
`,
		"b/b_test.go": `package b

import (
	"testing"

	"fake/g"
	"fake/internal/need"
)

func TestBeta(t *testing.T) { need.Skip(t, g.Beta, "beta missing") }
func TestRuns(t *testing.T) {}
`,
		"c/c_test.go": `package c

import (
	"testing"

	"fake/g"
	"fake/internal/need"
)

func TestGamma(t *testing.T) { need.Command(t, g.Gamma, "go") }
`,
		"zz/zz_test.go": `package zz

import (
	"os"
	"path/filepath"
	"testing"

	"fake/internal/need"
)

func TestMain(m *testing.M) {
	os.WriteFile(filepath.Join(os.Getenv("FAKE_SYNC"), "zz-started"), nil, 0o600)
	need.Summarize(m)
}

func TestNothing(t *testing.T) { need.NotCached(t) }
`,
	}
	for _, src := range []string{"need.go", "summary.go"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		files["internal/need/"+src] = string(b)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, sync
}

// goTest runs go test -p 2 ./... (plus args) in dir as a newcomer would:
// no CI, no switches; its output goes to a pipe, as to `| tee`.
func goTest(t *testing.T, dir, sync string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-p", "2"}, append(args, "./...")...)...)
	cmd.Dir = dir
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		switch k {
		case "CI", "GOFLAGS", "MAILSANDBOX_E2E", "MAILSANDBOX_BROWSER", "MAILSANDBOX_REQUIRE_PG":
			continue
		}
		cmd.Env = append(cmd.Env, e)
	}
	cmd.Env = append(cmd.Env, append(env, "FAKE_SYNC="+sync, "GOWORK=off")...)
	out, err := cmd.Output()
	return string(out), err
}

// The summary comes once, after every other package's line (even one that
// skipped after the summary package started), with each skipped group
// once, and again on a second run whose other results are cached. (One
// test, so the fake module is built once.)
func TestSummaryAtTheEnd(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go test puts its go command on PATH: %v", err)
	}
	if _, _, ok := invocation(); !ok {
		Skip(t, Group{Name: "Linux /proc", Enable: "run on Linux under go test"}, "no go parent in /proc")
	}
	dir, sync := fakeModule(t)
	for run := 1; run <= 2; run++ {
		out, err := goTest(t, dir, sync, nil)
		if err != nil {
			t.Fatalf("run %d: go test: %v\n%s", run, err, out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		head := -1
		for i, l := range lines {
			if strings.HasPrefix(l, "skipped here:") {
				if head >= 0 {
					t.Fatalf("run %d: summary printed twice:\n%s", run, out)
				}
				head = i
			}
		}
		want := []string{"  alpha: apt-get install alpha", "  beta: apt-get install beta"}
		if head < 0 || len(lines) != head+len(want)+2 {
			t.Fatalf("run %d: want the summary and then only zz's line at the end:\n%s", run, out)
		}
		for i, w := range want {
			if lines[head+1+i] != w {
				t.Errorf("run %d: summary line %d = %q, want %q", run, i, lines[head+1+i], w)
			}
		}
		if !strings.HasPrefix(lines[len(lines)-1], "ok  \tfake/zz\t") {
			t.Errorf("run %d: last line %q, want zz's ok line", run, lines[len(lines)-1])
		}
		for _, p := range []string{"fake/a", "fake/b", "fake/c"} {
			if !strings.Contains(strings.Join(lines[:head], "\n"), "ok  \t"+p+"\t") {
				t.Errorf("run %d: %s's line is not before the summary:\n%s", run, p, out)
			}
		}
		if run == 2 && !strings.Contains(out, "fake/c\t(cached)") {
			t.Errorf("run 2: c was not cached, so the check that cached runs keep the summary proved nothing:\n%s", out)
		}
	}
	// Under go test -json the summary is the last package's own output
	// (the stream stays JSON); under CI a missing group fails and nothing
	// is summarized.
	out, err := goTest(t, dir, sync, nil, "-json")
	if err != nil {
		t.Fatalf("go test -json: %v\n%s", err, out)
	}
	var zz strings.Builder
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e struct{ Action, Package, Output string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not JSON in go test -json's stream: %q", sc.Text())
		}
		if e.Action == "output" && e.Package == "fake/zz" {
			zz.WriteString(e.Output)
		}
	}
	if n := strings.Count(out, "skipped here:"); n != 1 || !strings.Contains(zz.String(), "skipped here: 2 group(s)") ||
		!strings.Contains(zz.String(), "  alpha: apt-get install alpha\n  beta: apt-get install beta\n") {
		t.Errorf("-json: want the summary once, in fake/zz's output (%d in the stream); zz printed:\n%s", n, zz.String())
	}

	out, err = goTest(t, dir, sync, []string{"CI=true"})
	if err == nil || strings.Contains(out, "skipped here") || !strings.Contains(out, "required here") {
		t.Errorf("CI=true: want the missing groups to fail and no summary; err %v:\n%s", err, out)
	}
}
