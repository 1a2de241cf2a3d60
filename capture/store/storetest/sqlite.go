package storetest

import (
	"database/sql"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// CheckSQLite checks a closed store's SQLite file (a DSN as given to
// store.Open; PostgreSQL DSNs are skipped): it must pass SQLite's
// integrity check, and the search index, which reads its columns from the
// messages table, must agree with it (a row deleted or changed in the
// wrong order breaks that). Call it after the store is closed.
func CheckSQLite(t testing.TB, dsn string) {
	t.Helper()
	if dsn == "" || strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return
	}
	path, _, _ := strings.Cut(dsn, "?")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Errorf("check store file: %v", err)
		return
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Errorf("store file integrity_check: %q %v", res, err)
	}
	if _, err := db.Exec(`INSERT INTO msg_search (msg_search, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("store search index disagrees with messages: %v", err)
	}
}
