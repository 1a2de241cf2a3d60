package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Folder change counters (migration 10): folder_counts.modseq grows in
// the transaction of every insert, update or delete of a folder's entries,
// whichever instance or path (ingest, IMAP, REST, POP3, retention) makes
// it, because triggers keep it. An IMAP server caches a folder's UIDs and
// flags with the counter it read before reading them, and reads them again
// only when the counter has moved: a SELECT or a command's end costs one
// row instead of the whole folder, also with several instances on one
// PostgreSQL. It is per folder, not yet per message (CONDSTORE would need
// each entry's own modseq and a record of expunges).
//
// The value only ever grows for a folder id: the row is created by the
// first entry (with an upsert, whichever trigger runs first) and dropped
// only with the folder.

// migration10ModSeqSQLite uses row triggers: each bumps the counter of the
// folder its row left or joined.
const migration10ModSeqSQLite = `
ALTER TABLE folder_counts ADD COLUMN modseq BIGINT NOT NULL DEFAULT 0
--;;
UPDATE folder_counts SET modseq = 1
--;;
CREATE TRIGGER entries_modseq_insert AFTER INSERT ON entries BEGIN
	INSERT INTO folder_counts (folder_id, modseq) VALUES (NEW.folder_id, 1)
	ON CONFLICT (folder_id) DO UPDATE SET modseq = modseq + 1;
END
--;;
CREATE TRIGGER entries_modseq_delete AFTER DELETE ON entries BEGIN
	UPDATE folder_counts SET modseq = modseq + 1 WHERE folder_id = OLD.folder_id;
END
--;;
CREATE TRIGGER entries_modseq_update AFTER UPDATE ON entries BEGIN
	UPDATE folder_counts SET modseq = modseq + 1 WHERE folder_id = OLD.folder_id AND OLD.folder_id <> NEW.folder_id;
	INSERT INTO folder_counts (folder_id, modseq) VALUES (NEW.folder_id, 1)
	ON CONFLICT (folder_id) DO UPDATE SET modseq = modseq + 1;
END
`

// migration10ModSeqPG uses statement triggers, one bump per folder per
// statement. PostgreSQL fires a statement's AFTER triggers in name order,
// so the folder counts triggers (entries_counts_*) have already created
// the row of every folder the statement touched and locked it; the upsert
// is for safety and takes the rows in folder order as they do.
const migration10ModSeqPG = `
ALTER TABLE folder_counts ADD COLUMN modseq BIGINT NOT NULL DEFAULT 0
--;;
UPDATE folder_counts SET modseq = 1
--;;
CREATE FUNCTION folder_modseq_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO folder_counts AS c (folder_id, modseq)
	SELECT DISTINCT folder_id, 1 FROM new_rows n WHERE EXISTS (SELECT 1 FROM folders f WHERE f.id = n.folder_id) ORDER BY folder_id
	ON CONFLICT (folder_id) DO UPDATE SET modseq = c.modseq + 1;
	RETURN NULL;
END $$
--;;
CREATE FUNCTION folder_modseq_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE folder_counts SET modseq = modseq + 1 WHERE folder_id IN (SELECT folder_id FROM old_rows);
	RETURN NULL;
END $$
--;;
CREATE FUNCTION folder_modseq_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO folder_counts AS c (folder_id, modseq)
	SELECT folder_id, 1 FROM (SELECT folder_id FROM new_rows UNION SELECT folder_id FROM old_rows) ch
	WHERE EXISTS (SELECT 1 FROM folders f WHERE f.id = ch.folder_id) ORDER BY folder_id
	ON CONFLICT (folder_id) DO UPDATE SET modseq = c.modseq + 1;
	RETURN NULL;
END $$
--;;
CREATE TRIGGER entries_modseq_insert AFTER INSERT ON entries REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION folder_modseq_new()
--;;
CREATE TRIGGER entries_modseq_delete AFTER DELETE ON entries REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION folder_modseq_old()
--;;
CREATE TRIGGER entries_modseq_update AFTER UPDATE ON entries REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION folder_modseq_both()
`

// FolderModSeq returns a folder's change counter: when two reads return
// the same value, its entries (UIDs, flags, which exist) did not change in
// between. Read it before the entries it vouches for. A folder that never
// held an entry has 0; ErrNotFound for no such folder.
func (s *Store) FolderModSeq(ctx context.Context, folderID int64) (int64, error) {
	var m int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COALESCE((SELECT c.modseq FROM folder_counts c WHERE c.folder_id = f.id), 0)
		FROM folders f WHERE f.id = ?`), folderID).Scan(&m)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("folder %d: %w", folderID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read folder %d change counter: %w", folderID, err)
	}
	return m, nil
}
