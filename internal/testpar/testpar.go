// Package testpar runs a package's tests more at once than go test's
// default, for packages whose tests mostly wait (on timeouts, databases,
// other processes) rather than use the CPU.
package testpar

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// Main is a TestMain body: it runs m with -parallel n unless the command
// line gave -parallel (go test's default is GOMAXPROCS, which on a 2-core
// machine let two waiting tests hold every slot), and exits with m's code.
func Main(m *testing.M, n int) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", fmt.Sprint(n))
	}
	os.Exit(m.Run())
}
