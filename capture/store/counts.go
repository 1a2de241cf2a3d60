package store

import "strings"

// Kept counts of each folder (migration "folder counts"): GET /mailboxes
// and a folder's listing total read them instead of counting entries. They
// are kept by triggers on entries, so every path that files, flags, moves
// or deletes an entry (ingest's group commit, IMAP, REST, retention)
// updates them in its own transaction: crash-consistent, and no caller can
// forget. A folder's row holds its entries, the unseen ones, the distinct
// messages (a folder may hold two copies of one message after IMAP COPY)
// and the latest received_at.
//
// A message's pair (folder, msg_seq) counts once: after a change it
// counts [F > 0] − [B > 0], F the entries of that pair now and B before.

// countsSQLite uses row triggers (SQLite has no statement triggers); each
// runs right after its row changes, so "no other entry of the pair" is the
// test. Latest is recomputed only when the newest entry goes.
const countsSQLite = `
CREATE TABLE folder_counts (
	folder_id INTEGER PRIMARY KEY,
	entries INTEGER NOT NULL DEFAULT 0,
	unseen INTEGER NOT NULL DEFAULT 0,
	msgs INTEGER NOT NULL DEFAULT 0,
	latest BIGINT NOT NULL DEFAULT 0
)
--;;
INSERT INTO folder_counts (folder_id, entries, unseen, msgs, latest)
	SELECT folder_id, COUNT(*), SUM(1 - seen), COUNT(DISTINCT msg_seq), MAX(received_at) FROM entries GROUP BY folder_id
--;;
CREATE TRIGGER entries_counts_insert AFTER INSERT ON entries BEGIN
	INSERT INTO folder_counts (folder_id, entries, unseen, msgs, latest)
	VALUES (NEW.folder_id, 1, 1 - NEW.seen,
		NOT EXISTS (SELECT 1 FROM entries x WHERE x.folder_id = NEW.folder_id AND x.msg_seq = NEW.msg_seq AND x.id <> NEW.id),
		NEW.received_at)
	ON CONFLICT (folder_id) DO UPDATE SET entries = entries + 1, unseen = unseen + excluded.unseen,
		msgs = msgs + excluded.msgs, latest = MAX(latest, excluded.latest);
END
--;;
CREATE TRIGGER entries_counts_delete AFTER DELETE ON entries BEGIN
	UPDATE folder_counts SET entries = entries - 1, unseen = unseen - (1 - OLD.seen),
		msgs = msgs - NOT EXISTS (SELECT 1 FROM entries x WHERE x.folder_id = OLD.folder_id AND x.msg_seq = OLD.msg_seq),
		latest = CASE WHEN OLD.received_at < latest THEN latest
			ELSE (SELECT COALESCE(MAX(x.received_at), 0) FROM entries x WHERE x.folder_id = OLD.folder_id) END
	WHERE folder_id = OLD.folder_id;
END
--;;
CREATE TRIGGER entries_counts_seen AFTER UPDATE OF seen ON entries
	WHEN OLD.folder_id = NEW.folder_id AND OLD.msg_seq = NEW.msg_seq AND OLD.received_at = NEW.received_at AND OLD.seen <> NEW.seen BEGIN
	UPDATE folder_counts SET unseen = unseen + OLD.seen - NEW.seen WHERE folder_id = NEW.folder_id;
END
--;;
CREATE TRIGGER entries_counts_move AFTER UPDATE OF folder_id, msg_seq, received_at ON entries
	WHEN OLD.folder_id <> NEW.folder_id OR OLD.msg_seq <> NEW.msg_seq OR OLD.received_at <> NEW.received_at BEGIN
	UPDATE folder_counts SET entries = entries - 1, unseen = unseen - (1 - OLD.seen),
		msgs = msgs - NOT EXISTS (SELECT 1 FROM entries x WHERE x.folder_id = OLD.folder_id AND x.msg_seq = OLD.msg_seq AND x.id <> OLD.id),
		latest = CASE WHEN OLD.received_at < latest THEN latest
			ELSE (SELECT COALESCE(MAX(x.received_at), 0) FROM entries x WHERE x.folder_id = OLD.folder_id AND x.id <> OLD.id) END
	WHERE folder_id = OLD.folder_id;
	INSERT INTO folder_counts (folder_id, entries, unseen, msgs, latest)
	VALUES (NEW.folder_id, 1, 1 - NEW.seen,
		NOT EXISTS (SELECT 1 FROM entries x WHERE x.folder_id = NEW.folder_id AND x.msg_seq = NEW.msg_seq AND x.id <> NEW.id),
		NEW.received_at)
	ON CONFLICT (folder_id) DO UPDATE SET entries = entries + 1, unseen = unseen + excluded.unseen,
		msgs = msgs + excluded.msgs, latest = MAX(latest, excluded.latest);
END
--;;
CREATE TRIGGER folders_counts_delete AFTER DELETE ON folders BEGIN
	DELETE FROM folder_counts WHERE folder_id = OLD.id;
END
`

// countsPG uses statement triggers with transition tables: one upsert per
// folder per statement (ingest inserts a batch's entries in one), rows
// locked in folder order. Their queries see the statement's result, so F
// is counted now and B is F less the statement's net change to the pair.
const countsPGTable = `
CREATE TABLE folder_counts (
	folder_id BIGINT PRIMARY KEY,
	entries BIGINT NOT NULL DEFAULT 0,
	unseen BIGINT NOT NULL DEFAULT 0,
	msgs BIGINT NOT NULL DEFAULT 0,
	latest BIGINT NOT NULL DEFAULT 0
)
--;;
INSERT INTO folder_counts (folder_id, entries, unseen, msgs, latest)
	SELECT folder_id, COUNT(*), SUM(1 - seen), COUNT(DISTINCT msg_seq), MAX(received_at) FROM entries GROUP BY folder_id
`

// countsPG adds the PostgreSQL functions and triggers to countsPGTable.
func countsPG() string {
	fn := func(name, changes string) string {
		return `
--;;
CREATE FUNCTION ` + name + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	WITH ch AS (` + changes + `),
	g AS (SELECT folder_id, msg_seq, SUM(d) AS n, SUM(d * (1 - seen)) AS u,
		MAX(received_at) FILTER (WHERE d > 0) AS added FROM ch GROUP BY folder_id, msg_seq),
	p AS (SELECT g.*, (SELECT COUNT(*) FROM entries x WHERE x.folder_id = g.folder_id AND x.msg_seq = g.msg_seq) AS f FROM g),
	t AS (SELECT folder_id, SUM(n) AS n, SUM(u) AS u, SUM((f > 0)::int - ((f - n) > 0)::int) AS m, COALESCE(MAX(added), 0) AS added
		FROM p GROUP BY folder_id)
	INSERT INTO folder_counts AS c (folder_id, entries, unseen, msgs, latest)
	SELECT folder_id, n, u, m, added FROM t WHERE EXISTS (SELECT 1 FROM folders f WHERE f.id = t.folder_id) ORDER BY folder_id
	ON CONFLICT (folder_id) DO UPDATE SET entries = c.entries + excluded.entries, unseen = c.unseen + excluded.unseen,
		msgs = c.msgs + excluded.msgs, latest = GREATEST(c.latest, excluded.latest);
	` + removedLatest(changes) + `
	RETURN NULL;
END $$`
	}
	const newRows = `SELECT folder_id, msg_seq, seen, received_at, 1 AS d FROM new_rows`
	const oldRows = `SELECT folder_id, msg_seq, seen, received_at, -1 AS d FROM old_rows`
	return countsPGTable +
		fn("folder_counts_insert", newRows) +
		fn("folder_counts_delete", oldRows) +
		fn("folder_counts_update", newRows+` UNION ALL `+oldRows) + `
--;;
CREATE TRIGGER entries_counts_insert AFTER INSERT ON entries REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION folder_counts_insert()
--;;
CREATE TRIGGER entries_counts_delete AFTER DELETE ON entries REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION folder_counts_delete()
--;;
CREATE TRIGGER entries_counts_update AFTER UPDATE ON entries REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION folder_counts_update()
--;;
CREATE FUNCTION folder_counts_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM folder_counts WHERE folder_id = OLD.id;
	RETURN NULL;
END $$
--;;
CREATE TRIGGER folders_counts_delete AFTER DELETE ON folders FOR EACH ROW EXECUTE FUNCTION folder_counts_forget()
`
}

// removedLatest recomputes the latest of the folders whose newest entry
// the statement removed (none for an insert).
func removedLatest(changes string) string {
	if !strings.Contains(changes, "old_rows") {
		return ""
	}
	return `UPDATE folder_counts c SET latest = (SELECT COALESCE(MAX(x.received_at), 0) FROM entries x WHERE x.folder_id = c.folder_id)
	FROM (SELECT folder_id, MAX(received_at) AS r FROM old_rows GROUP BY folder_id) o
	WHERE c.folder_id = o.folder_id AND o.r >= c.latest;`
}
