package store

import (
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
)

// Address is a mailbox with an optional display name.
type Address = mailparse.Address

// Envelope is the SMTP envelope: the reverse path and the recipients as the
// client gave them.
type Envelope struct {
	From string   `json:"mail_from"`
	To   []string `json:"rcpt_to"`
	// Username is the SMTP AUTH user that sent the message; "" when none.
	Username string `json:"username,omitempty"`
	// ClientIP is the address the message came from over SMTP, and Helo
	// the name the client greeted with; "" when unknown (other paths, or
	// stored before they were kept). The authentication check's SPF uses
	// them.
	ClientIP string `json:"client_ip,omitempty"`
	Helo     string `json:"helo,omitempty"`
}

// Message is a stored message's summary: what listings and searches return.
type Message struct {
	ID         string    `json:"id"`
	Mailboxes  []string  `json:"mailboxes"`
	From       Address   `json:"from"`
	To         []Address `json:"to"`
	Cc         []Address `json:"cc"`
	Subject    string    `json:"subject"`
	Date       time.Time `json:"date"` // from the Date header; zero when absent
	ReceivedAt time.Time `json:"received_at"`
	Size       int64     `json:"size"`
	// Seen is the state in the mailbox queried, or, across all mail, true
	// when every copy is seen.
	Seen           bool     `json:"seen"`
	HasAttachments bool     `json:"has_attachments"`
	Snippet        string   `json:"snippet"`
	MessageID      string   `json:"message_id"` // the Message-ID header, no angle brackets
	Envelope       Envelope `json:"envelope"`
	// ParseError is non-empty when the message could not be parsed fully; it
	// is still stored and served raw.
	ParseError string `json:"parse_error,omitempty"`
	// Bcc lists the envelope recipients that the To and Cc headers do not
	// name (Mailpit shows them so); ReplyTo is the Reply-To header.
	// Attachments and Inlines count the attachment and inline parts.
	// Messages stored before these were kept have them empty.
	Bcc         []Address `json:"bcc,omitempty"`
	ReplyTo     []Address `json:"reply_to,omitempty"`
	Attachments int       `json:"attachments,omitempty"`
	Inlines     int       `json:"inlines,omitempty"`
	// Tags are the message's tags, sorted case-insensitively; never nil.
	Tags []string `json:"tags"`

	seq int64
}

// Query selects messages. Empty fields do not filter. Text fields match
// case-insensitive substrings.
type Query struct {
	// Mailbox restricts to one mailbox (an address, any case) and Folder to
	// one of its folders; Folder "" means every folder of the mailbox.
	Mailbox string
	Folder  string
	// To matches envelope recipients and To/Cc names and addresses.
	To      string
	From    string
	Subject string
	// Text matches the subject or the decoded body text.
	Text   string
	Since  time.Time // received at or after
	Before time.Time // received before
	// Tag keeps the messages with this tag (exact, case-insensitive).
	Tag string
	// ID restricts to one message: "does this message match?", cheaply.
	ID string
	// Conds are further conditions, all of which must hold: what richer
	// query languages (Mailpit's search) compile to.
	Conds []Cond
	// Limit caps the page (0: DefaultLimit, at most MaxLimit); Offset skips.
	Limit  int
	Offset int
	// BeforeID is a cursor: the page starts with the match listed just
	// after message BeforeID (older than it), so the next page costs what
	// the first did, and mail arriving meanwhile shifts nothing.
	BeforeID string
}

// Paging bounds for Query.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// CountCap is how many matches SearchCapped counts before it stops: a
// filter matching more reports CountCap and "not exact". Counting every
// match of a filter that matches most of the store reads every row; the
// cap keeps that cost near the page's (issue #22).
const CountCap = 1000

// MailboxInfo summarises one mailbox.
type MailboxInfo struct {
	Address  string    `json:"address"`
	Total    int       `json:"total"`
	Unread   int       `json:"unread"`
	LatestAt time.Time `json:"latest_at"`
}

// Folder is one folder of a mailbox. UIDs in a folder only grow; a folder
// that is deleted and created again gets a new UIDValidity.
type Folder struct {
	ID          int64  `json:"id"`
	Mailbox     string `json:"mailbox"`
	Name        string `json:"name"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Subscribed  bool   `json:"subscribed"`
	SpecialUse  string `json:"special_use"` // e.g. `\Sent`, `\Trash`; "" for none
	Total       int    `json:"total"`
	Unseen      int    `json:"unseen"`
	// RecentUID is the highest UID an IMAP session has claimed as recent
	// (ClaimRecent); Recent counts the entries above it, recent for the
	// next session to select the folder.
	RecentUID uint32 `json:"recent_uid"`
	Recent    int    `json:"recent"`
	// ModSeq grows with every change to the folder's entries (see
	// FolderModSeq); not part of any API shape.
	ModSeq int64 `json:"-"`
}

// Entry is one copy of a message in one folder of a mailbox.
type Entry struct {
	ID         int64     `json:"id"` // unique and stable: POP3 UIDL can use it
	MessageID  string    `json:"message_id"`
	Mailbox    string    `json:"mailbox"`
	FolderID   int64     `json:"folder_id"`
	UID        uint32    `json:"uid"`
	Flags      []string  `json:"flags"` // includes `\Seen` when seen
	Size       int64     `json:"size"`
	ReceivedAt time.Time `json:"received_at"` // IMAP INTERNALDATE

	seq int64
}

// Seen reports whether the entry carries `\Seen`.
func (e Entry) Seen() bool {
	for _, f := range e.Flags {
		if f == FlagSeen {
			return true
		}
	}
	return false
}

// FlagSeen is the one flag kept in its own column, for unread counts.
const FlagSeen = `\Seen`

// InboxName is the folder new mail goes to.
const InboxName = "INBOX"

// NewDelivery asks the relay queue to send a message to some recipients
// through one destination (a domain, a smarthost, or a route key).
type NewDelivery struct {
	Recipients  []string
	Destination string
}

// Cond is one condition of a Query. Text fields match case-insensitive
// substrings; Not negates the condition.
type Cond struct {
	Field CondField
	Not   bool
	Text  string    // CondText … CondTag
	Bytes int64     // CondLarger, CondSmaller
	Time  time.Time // CondAfter, CondBefore
}

// CondField is what a Cond tests.
type CondField int

// Cond fields.
const (
	CondText       CondField = iota + 1 // subject, sender, recipients or body text
	CondSubject                         // Subject header
	CondFrom                            // From header (name or address) or envelope sender
	CondTo                              // To header
	CondCc                              // Cc header
	CondBcc                             // envelope recipients To and Cc do not name
	CondReplyTo                         // Reply-To header
	CondAddressed                       // any of From, To, Cc, Bcc, Reply-To
	CondMessageID                       // Message-ID header
	CondTag                             // a tag (exact, case-insensitive)
	CondTagged                          // has any tag
	CondRead                            // every copy seen
	CondAttachment                      // has an attachment
	CondInline                          // has an inline part
	CondLarger                          // size > Bytes
	CondSmaller                         // size < Bytes
	CondAfter                           // received at or after Time
	CondBefore                          // received at or before Time
)
