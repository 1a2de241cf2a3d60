package imapd_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more tests run at once than the default (GOMAXPROCS) when
// -parallel is not given: most of this package's tests wait (on clients
// in other processes: Python's imaplib, mbsync, curl, Dovecot; on IDLE
// and timeouts), not on the CPU.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
