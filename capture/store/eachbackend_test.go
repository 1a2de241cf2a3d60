package store

import (
	"path/filepath"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// eachBackend runs fn once per backend, in parallel, as the subtests
// "sqlite" (a file in t.TempDir()) and "postgres" (a fresh schema; skips
// unless MAILSANDBOX_TEST_PG names a database): the internal tests' form
// of the external tests' backends.
func eachBackend(t *testing.T, fn func(t *testing.T, dsn string, pg bool)) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, filepath.Join(t.TempDir(), "mail.db"), false)
	})
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		t.Parallel()
		fn(t, storetest.PostgresDSN(t), true)
	})
}
