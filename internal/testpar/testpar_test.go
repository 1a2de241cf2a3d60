package testpar_test

import (
	"flag"
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/testpar"
)

func TestMain(m *testing.M) { testpar.Main(m, 3) }

// TestParallelSet: without -parallel on the command line (as go test ./...
// and .ci/run run it), Main set it.
func TestParallelSet(t *testing.T) {
	if got := flag.Lookup("test.parallel").Value.String(); got != "3" {
		t.Fatalf("-parallel %s, want 3", got)
	}
}
