package skipsummary

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/need"
)

func TestMain(m *testing.M) { need.Summarize(m) }

// go test prints packages in import-path order, and the summary must come
// after every other package: this package has to sort last.
func TestSortsLast(t *testing.T) {
	out, err := exec.Command("go", "list", "github.com/mailsandbox/mailsandbox/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	const self = "github.com/mailsandbox/mailsandbox/zz/skipsummary"
	if len(pkgs) < 2 || pkgs[len(pkgs)-1] != self {
		t.Fatalf("go test ./... would print %v last, not %s: rename so this package sorts last", pkgs[max(0, len(pkgs)-1):], self)
	}
	need.NotCached(t) // last: it moves the test into /proc; a cached result would print no summary
}
