package rest

import (
	"flag"
	"os"
	"testing"
)

// TestMain lets more tests run at once than the default (GOMAXPROCS) when
// -parallel is not given: most of this package's tests wait (on timeouts
// the server must enforce, slow clients, long polls), not on the CPU, and
// at two at a time the waiting ones held both slots.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
