package store_test

import (
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/testpar"
)

// TestMain lets more tests run at once than the default (GOMAXPROCS) when
// -parallel is not given: most of this package's time is spent waiting on
// databases (fsync, PostgreSQL round trips), not on the CPU.
func TestMain(m *testing.M) { testpar.Main(m, 8) }
