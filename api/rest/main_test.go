package rest

import (
	"testing"

	"github.com/mailsandbox/mailsandbox/internal/testpar"
)

// TestMain lets more tests run at once than the default (GOMAXPROCS) when
// -parallel is not given: most of this package's tests wait (on timeouts
// the server must enforce, slow clients, long polls), not on the CPU, and
// at two at a time the waiting ones held both slots.
func TestMain(m *testing.M) { testpar.Main(m, 8) }
