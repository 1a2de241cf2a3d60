package smtpd_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more tests run at once than the default (GOMAXPROCS) when
// -parallel is not given: most of this package's tests wait (on read
// timeouts, fault delays, slow clients, external clients), not on the CPU.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
