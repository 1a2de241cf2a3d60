package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// backends runs fn once per backend, as the subtests "sqlite" and
// "postgres"; openTest and testDSN read the backend from the test's name.
// The PostgreSQL run skips unless MAILSANDBOX_TEST_PG names a database (see
// package storetest). Each run has its own database, so all run in
// parallel.
func backends(t *testing.T, fn func(t *testing.T)) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t)
	})
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		t.Parallel()
		fn(t)
	})
}

// onPostgres reports whether t runs inside backends' "postgres" subtest.
func onPostgres(t testing.TB) bool {
	return strings.Contains(t.Name()+"/", "/postgres/")
}

// testDSN returns a fresh, empty database for t's backend: a SQLite file in
// t.TempDir() or a PostgreSQL schema dropped at the end of the test. Two
// stores opened on one DSN share their data (a reopen, or two instances).
func testDSN(t testing.TB) string {
	t.Helper()
	if onPostgres(t) {
		return storetest.PostgresDSN(t)
	}
	return filepath.Join(t.TempDir(), "mail.db")
}
