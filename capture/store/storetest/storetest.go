// Package storetest gives tests a database for the store: a fresh
// PostgreSQL schema per call, so tests run in parallel on one server and
// never see each other's rows.
//
// PostgreSQL tests run when MAILSANDBOX_TEST_PG names a database (a
// postgres:// URL); without it they skip, unless MAILSANDBOX_REQUIRE_PG=1
// makes them fail instead (CI sets both).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Environment variables read by PostgresDSN.
const (
	EnvDSN     = "MAILSANDBOX_TEST_PG"
	EnvRequire = "MAILSANDBOX_REQUIRE_PG"
)

// RequirePostgres skips t when no test database is configured (or fails it
// when one is required) and returns the configured base URL.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		need.Skip(t, need.Postgres, EnvDSN+" is not set")
	}
	return base
}

// PostgresDSN creates an empty schema in the test database and returns a
// DSN whose search_path is that schema (and with synchronous_commit off);
// the schema is dropped when the test ends. It skips or fails t as
// RequirePostgres does.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := RequirePostgres(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("drop test schema: %v", err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	// Test data need not survive a power cut: commits need not wait for
	// the disk, which makes write-heavy tests several times faster.
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}
