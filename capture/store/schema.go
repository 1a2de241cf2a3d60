package store

import (
	"context"
	"fmt"
	"strings"
)

// migrations are applied in order, each once, recorded in schema_version.
// Never edit an applied migration: append a new one. {{id}} is the dialect's
// auto-increment key and {{blob}} its byte type.
func migrations(pg bool) []string {
	if pg {
		return []string{migration1, migration2PG, migration3PG, migration4Mailpit, migration5IMAPState, migration6Webhooks, migration7TagsPG,
			countsPG(), // 8: folder counts (reads at scale, counts.go)
			migration9Client,
			migration10ModSeqPG,     // 10: folder change counters (modseq.go)
			migration11WebhookMarks, // 11: webhook marks (webhookmarks.go)
			liveCountsPG,            // 12: live message count kept in delta rows (livecount.go)
		}
	}
	return []string{migration1, migration2SQLite, migration3SQLite, migration4Mailpit, migration5IMAPState, migration6Webhooks, migration7TagsSQLite,
		countsSQLite, // 8: folder counts (reads at scale, counts.go)
		migration9Client,
		migration10ModSeqSQLite,  // 10: folder change counters (modseq.go)
		migration11WebhookMarks,  // 11: webhook marks (webhookmarks.go)
		migrationLiveCountSQLite, // 12: live messages counted without an index of copies (livecount.go)
		migrationSearchTail,      // 13: the search index's mark, indexed in batches after ingest (searchtail.go)
	}
}

// migrationLiveCountSQLite (live messages counted without an index of
// copies): messages_live indexed every message's copies so that the live
// messages could be counted, which cost ingest a B-tree page per commit
// (a commit writes every page it touched; a 1 KB message touched about
// 19). SQLite counts a whole table from its pages' headers, far faster than
// it walked that index, so the live messages are now all messages less
// those in no mailbox (copies 0: only those the relay queue still holds,
// until they go), which a partial index that ingest never writes lists.
const migrationLiveCountSQLite = `
DROP INDEX IF EXISTS messages_live;
CREATE INDEX IF NOT EXISTS messages_gone ON messages(seq) WHERE copies = 0
`

// migration11WebhookMarks (webhooks that never slow capture): one row per
// webhook URL with the last message every delivery was handed over for
// (done_seq) and the range a sender holds (up to claimed_seq, leased). New
// messages no longer get a webhooks row at ingest; that table keeps only
// deliveries whose first attempt failed (retries, given up) and those
// queued before this version, which the retry path sends as before.
const migration11WebhookMarks = `
CREATE TABLE webhook_marks (
	url TEXT PRIMARY KEY,
	done_seq BIGINT NOT NULL,
	claimed_seq BIGINT NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	delivered BIGINT NOT NULL DEFAULT 0,
	updated_at BIGINT NOT NULL
)
`

// migration9Client: the SMTP client's address and HELO name, for SPF in
// the authentication check (and MailHog's Raw.Helo).
const migration9Client = `
ALTER TABLE messages ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN helo TEXT NOT NULL DEFAULT ''
`

// migration7Tags (tags): tag names, one row per tag with its lower-cased
// key (tags are case-insensitive; the first spelling is kept), and the
// tags of each message. An untagged message touches neither table at
// ingest.
const migration7TagsSQLite = `
CREATE TABLE tag_names (id {{id}}, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE message_tags (msg_seq BIGINT NOT NULL, tag_id BIGINT NOT NULL, PRIMARY KEY (msg_seq, tag_id)) WITHOUT ROWID;
CREATE INDEX message_tags_tag ON message_tags(tag_id)
`

const migration7TagsPG = `
CREATE TABLE tag_names (id {{id}}, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE message_tags (msg_seq BIGINT NOT NULL, tag_id BIGINT NOT NULL, PRIMARY KEY (msg_seq, tag_id));
CREATE INDEX message_tags_tag ON message_tags(tag_id)
`

// migration4Mailpit (Mailpit's API): the SMTP AUTH user, Reply-To, the
// envelope-only recipients (Mailpit's Bcc) and part counts, for summaries
// and search; and an index of seen copies, so that counting read
// messages reads only those (new mail is unseen: ingest does not touch it).
const migration4Mailpit = `
ALTER TABLE messages ADD COLUMN username TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN reply_to_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN bcc_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN attachments INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN inlines INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_seen ON entries(msg_seq) WHERE seen = 1
`

// migration5IMAPState (IMAP \Recent and subscriptions): recent_uid is the
// highest UID an IMAP session has claimed as recent (mail above it is
// \Recent for the next session to select the folder); subscriptions are a
// list of names of their own (RFC 3501: a name may stay subscribed after
// its folder is deleted). Existing mail is not recent; existing
// subscriptions are kept.
const migration5IMAPState = `
ALTER TABLE folders ADD COLUMN recent_uid BIGINT NOT NULL DEFAULT 0;
UPDATE folders SET recent_uid = uidnext - 1;
CREATE TABLE subscriptions (
	mailbox TEXT NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (mailbox, name)
);
INSERT INTO subscriptions (mailbox, name) SELECT mailbox, name FROM folders WHERE subscribed = 1
`

// migration6Webhooks (webhooks): the webhook queue, one row per new message
// and URL, with the payload as it was when the message arrived.
const migration6Webhooks = `
CREATE TABLE webhooks (
	id {{id}},
	delivery_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	url TEXT NOT NULL,
	payload {{blob}} NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	queued_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhooks_due ON webhooks(status, next_attempt_at)
`

// migration3: the search text moves into bodies, and may be a span of the
// raw message instead of a copy (text_off, 0-based, and text_len; text_off
// -1 means text holds the lower-cased copy). On SQLite bodies gets a real
// rowid key (BIGINT PRIMARY KEY had made a second B-tree), and the search
// index reads its columns from messages instead of keeping a copy: every
// B-tree a message touches is a page written at each commit.
const migration3SQLite = `
CREATE TABLE bodies_v3 (
	seq INTEGER PRIMARY KEY,
	text_off INTEGER NOT NULL DEFAULT -1,
	text_len INTEGER NOT NULL DEFAULT 0,
	text TEXT NOT NULL DEFAULT '',
	raw BLOB NOT NULL
);
INSERT INTO bodies_v3 (seq, text, raw) SELECT b.seq, COALESCE(t.body, ''), b.raw FROM bodies b LEFT JOIN texts t ON t.seq = b.seq;
DROP TABLE bodies;
DROP TABLE texts;
ALTER TABLE bodies_v3 RENAME TO bodies;
DROP TABLE msg_search;
CREATE VIRTUAL TABLE msg_search USING fts5(search_to, search_from, search_subject, tokenize = 'trigram',
	content = 'messages', content_rowid = 'seq', columnsize = 0);
INSERT INTO msg_search (msg_search) VALUES ('rebuild')
`

const migration3PG = `
ALTER TABLE bodies ADD COLUMN text_off BIGINT NOT NULL DEFAULT -1;
ALTER TABLE bodies ADD COLUMN text_len BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bodies ADD COLUMN text TEXT NOT NULL DEFAULT '';
UPDATE bodies b SET text = t.body FROM texts t WHERE t.seq = b.seq;
DROP TABLE texts
`

// migration2: fast counts of all mail, and on SQLite a trigram index for
// substring search of recipients, senders and subjects (backfilled).
const migration2SQLite = `
CREATE INDEX messages_live ON messages(copies);
CREATE VIRTUAL TABLE msg_search USING fts5(search_to, search_from, search_subject, tokenize = 'trigram');
INSERT INTO msg_search (rowid, search_to, search_from, search_subject) SELECT seq, search_to, search_from, search_subject FROM messages
`

const migration2PG = `
CREATE INDEX messages_live ON messages(copies)
`

// migration1: messages, bodies, folders, mailbox entries, the relay queue.
const migration1 = `
CREATE TABLE messages (
	seq {{id}},
	id TEXT NOT NULL UNIQUE,
	received_at BIGINT NOT NULL,
	mail_from TEXT NOT NULL,
	rcpt_to TEXT NOT NULL,
	size BIGINT NOT NULL,
	from_name TEXT NOT NULL,
	from_addr TEXT NOT NULL,
	to_json TEXT NOT NULL,
	cc_json TEXT NOT NULL,
	subject TEXT NOT NULL,
	date BIGINT NOT NULL,
	message_id TEXT NOT NULL,
	has_attachments INTEGER NOT NULL,
	snippet TEXT NOT NULL,
	parse_error TEXT NOT NULL,
	search_to TEXT NOT NULL,
	search_from TEXT NOT NULL,
	search_subject TEXT NOT NULL,
	copies INTEGER NOT NULL
);
CREATE INDEX messages_received ON messages(received_at);
CREATE TABLE bodies (
	seq BIGINT PRIMARY KEY,
	raw {{blob}} NOT NULL
);
CREATE TABLE texts (
	seq BIGINT PRIMARY KEY,
	body TEXT NOT NULL
);
CREATE TABLE folders (
	id {{id}},
	mailbox TEXT NOT NULL,
	name TEXT NOT NULL,
	uidvalidity BIGINT NOT NULL,
	uidnext BIGINT NOT NULL,
	subscribed INTEGER NOT NULL DEFAULT 1,
	special_use TEXT NOT NULL DEFAULT '',
	UNIQUE (mailbox, name)
);
CREATE TABLE entries (
	id {{id}},
	msg_seq BIGINT NOT NULL,
	mailbox TEXT NOT NULL,
	folder_id BIGINT NOT NULL,
	uid BIGINT NOT NULL,
	seen INTEGER NOT NULL DEFAULT 0,
	flags TEXT NOT NULL DEFAULT '',
	received_at BIGINT NOT NULL,
	UNIQUE (folder_id, uid)
);
CREATE INDEX entries_msg ON entries(msg_seq);
CREATE INDEX entries_mailbox ON entries(mailbox, msg_seq);
CREATE INDEX entries_folder_seq ON entries(folder_id, msg_seq);
CREATE TABLE deliveries (
	id {{id}},
	msg_seq BIGINT NOT NULL,
	message_id TEXT NOT NULL,
	mail_from TEXT NOT NULL,
	recipients TEXT NOT NULL,
	destination TEXT NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	details TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_msg ON deliveries(msg_seq);
`

func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, len(migrations(s.pg)))
}

// migrateTo applies the migrations up to version upto (tests build old
// databases with it).
func (s *Store) migrateTo(ctx context.Context, upto int) error {
	id, blob := "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"
	if s.pg {
		id, blob = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BYTEA"
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	defer tx.Rollback()
	if s.pg {
		// Several instances may start together: one migrates, the others
		// wait. The lock is per schema, as the tables are.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mailsandbox/migrate/' || current_schema(), 0))`); err != nil {
			return fmt.Errorf("migrate store: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return fmt.Errorf("migrate store: read version: %w", err)
	}
	all := migrations(s.pg)
	if have > len(all) {
		return fmt.Errorf("migrate store: database schema version %d is newer than this program (%d)", have, len(all))
	}
	for v := have; v < upto; v++ {
		sqlText := strings.NewReplacer("{{id}}", id, "{{blob}}", blob).Replace(all[v])
		// Trigger and function bodies hold ';': such a migration separates
		// its statements with a "--;;" line instead.
		sep := ";"
		if strings.Contains(sqlText, "\n--;;\n") {
			sep = "\n--;;\n"
		}
		for _, stmt := range strings.Split(sqlText, sep) {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate store to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_version (version) VALUES (?)`), v+1); err != nil {
			return fmt.Errorf("migrate store: %w", err)
		}
	}
	return tx.Commit()
}
