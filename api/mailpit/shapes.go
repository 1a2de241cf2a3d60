package mailpit

import (
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Mailpit's JSON shapes: PascalCase message fields, lower-case list
// envelope, [] never null.

type addressJSON struct {
	Name    string
	Address string
}

type summaryJSON struct {
	ID          string
	MessageID   string
	Read        bool
	From        *addressJSON
	To          []addressJSON
	Cc          []addressJSON
	Bcc         []addressJSON
	ReplyTo     []addressJSON
	Subject     string
	Created     time.Time
	Username    string
	Tags        []string
	Size        int64
	Attachments int
	Snippet     string
}

type listJSON struct {
	Total          int           `json:"total"`
	Unread         int           `json:"unread"`
	Count          int           `json:"count"`
	MessagesCount  int           `json:"messages_count"`
	MessagesUnread int           `json:"messages_unread"`
	Start          int           `json:"start"`
	Tags           []string      `json:"tags"`
	Messages       []summaryJSON `json:"messages"`
}

type checksumsJSON struct {
	MD5    string
	SHA1   string
	SHA256 string
}

type partJSON struct {
	PartID      string
	FileName    string
	ContentType string
	ContentID   string
	Size        int
	Checksums   checksumsJSON
}

type listUnsubscribeJSON struct {
	Header     string
	Links      []string
	Errors     string
	HeaderPost string
}

type messageJSON struct {
	ID              string
	MessageID       string
	From            *addressJSON
	To              []addressJSON
	Cc              []addressJSON
	Bcc             []addressJSON
	ReplyTo         []addressJSON
	ReturnPath      string
	Subject         string
	ListUnsubscribe listUnsubscribeJSON
	Date            time.Time
	Tags            []string
	Username        string
	Text            string
	HTML            string
	Size            int64
	Inline          []partJSON
	Attachments     []partJSON
}

func addrList(list []store.Address) []addressJSON {
	out := make([]addressJSON, 0, len(list))
	for _, a := range list {
		out = append(out, addressJSON{Name: a.Name, Address: a.Address})
	}
	return out
}

// fromAddr is always an object, empty for a message without From, as
// Mailpit's.
func fromAddr(a store.Address) *addressJSON {
	return &addressJSON{Name: a.Name, Address: a.Address}
}

// created is the receipt time as Mailpit keeps it: milliseconds, UTC.
func created(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func toSummary(m store.Message) summaryJSON {
	atts := m.Attachments
	if atts == 0 && m.Inlines == 0 && m.HasAttachments {
		atts = 1 // stored before part counts were kept
	}
	return summaryJSON{
		ID: m.ID, MessageID: m.MessageID, Read: m.Seen, From: fromAddr(m.From),
		To: addrList(m.To), Cc: addrList(m.Cc), Bcc: addrList(m.Bcc), ReplyTo: addrList(m.ReplyTo),
		Subject: m.Subject, Created: created(m.ReceivedAt), Username: m.Envelope.Username,
		Tags: nonNilTags(m.Tags), Size: m.Size, Attachments: atts, Snippet: m.Snippet,
	}
}

func nonNilTags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}
