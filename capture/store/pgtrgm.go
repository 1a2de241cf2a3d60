package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL a substring search of recipients, senders or subjects
// (LIKE '%…%') is answered by a trigram index (the pg_trgm extension, in
// PostgreSQL's contrib, part of Debian's server package), as SQLite's
// msg_search answers it: one GIN index over the three columns. It is not
// a migration because the extension may be unavailable: creating it needs
// a superuser, or (it is a trusted extension) the right to create objects
// in the database. Without it the store works as before, reading every
// message for such a search, and says so once at start-up; each start
// tries again, so installing the extension later is enough.

const trgmIndex = `messages_search_trgm`

// ensureTrigram creates the extension ext (pg_trgm; tests name one that
// does not exist) in the public schema, once per database (stores in other
// schemas share it), and the index, and sets s.trgm when the index is
// there. It never fails Open.
func (s *Store) ensureTrigram(ctx context.Context, ext string) {
	schema, err := s.trgmSchema(ctx, ext)
	if err == nil && schema == "" {
		schema, err = s.createTrgm(ctx, ext)
	}
	if err != nil {
		s.log.Warn("postgres: no trigram index ("+ext+"): searching to, from and subject by substring reads every message; "+
			"a superuser can run CREATE EXTENSION "+ext+" SCHEMA public, and the next start builds the index", "err", err)
		return
	}
	start := time.Now()
	built, err := s.createTrgmIndex(ctx, schema)
	if err != nil {
		s.log.Warn("postgres: could not build the trigram index: searching to, from and subject by substring reads every message", "err", err)
		return
	}
	if took := time.Since(start); built && took >= time.Second {
		s.log.Info("postgres: built the trigram index for substring search", "took", took.Round(time.Millisecond))
	} else if built {
		s.log.Debug("postgres: built the trigram index for substring search", "took", took.Round(time.Millisecond))
	}
	s.trgm = true
}

// trgmSchema returns the schema ext is installed in, "" when it is not.
func (s *Store) trgmSchema(ctx context.Context, ext string) (string, error) {
	var schema string
	err := s.wdb.QueryRowContext(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = $1`, ext).Scan(&schema)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look for %s: %w", ext, err)
	}
	return schema, nil
}

// createTrgm installs ext into public. Stores of every schema start
// together in tests: a lock over the whole database lets one create it.
func (s *Store) createTrgm(ctx context.Context, ext string) (string, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", ext, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mailsandbox/pg_trgm', 0))`); err != nil {
		return "", fmt.Errorf("create %s: lock: %w", ext, err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS `+pgx.Identifier{ext}.Sanitize()+` SCHEMA public`); err != nil {
		return "", fmt.Errorf("create %s: %w", ext, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("create %s: %w", ext, err)
	}
	schema, err := s.trgmSchema(ctx, ext)
	if err == nil && schema == "" {
		err = fmt.Errorf("create %s: not installed after CREATE EXTENSION", ext)
	}
	return schema, err
}

// createTrgmIndex builds the index unless it exists (built reports it
// did). The opclass is named with its schema, which need not be on the
// store's search_path.
func (s *Store) createTrgmIndex(ctx context.Context, schema string) (built bool, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	// The migrations' lock: instances sharing the schema build it once.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mailsandbox/migrate/' || current_schema(), 0))`); err != nil {
		return false, err
	}
	var have bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1)`,
		trgmIndex).Scan(&have); err != nil {
		return false, err
	}
	if have {
		return false, nil
	}
	ops := pgx.Identifier{schema, "gin_trgm_ops"}.Sanitize()
	if _, err := tx.ExecContext(ctx, `CREATE INDEX `+trgmIndex+` ON messages USING gin (search_to `+ops+`, search_from `+ops+`, search_subject `+ops+`)`); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
