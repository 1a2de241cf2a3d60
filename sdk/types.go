package sdk

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Address is a mail address with an optional display name.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// String formats the address as "Name <addr>" or just "addr".
func (a Address) String() string {
	if a.Name == "" {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

// Mailbox is one entry of GET /mailboxes: a mailbox named by a lower-cased
// recipient address.
type Mailbox struct {
	Address  string    `json:"address"`
	Total    int       `json:"total"`
	Unread   int       `json:"unread"`
	LatestAt time.Time `json:"latest_at"`
}

// Summary is a message as listed by mailbox listings, search and wait.
type Summary struct {
	ID             string    `json:"id"`
	Mailboxes      []string  `json:"mailboxes"`
	From           Address   `json:"from"`
	To             []Address `json:"to"`
	Cc             []Address `json:"cc"`
	Subject        string    `json:"subject"`
	Date           time.Time `json:"date"`
	ReceivedAt     time.Time `json:"received_at"`
	Size           int64     `json:"size"`
	Seen           bool      `json:"seen"`
	HasAttachments bool      `json:"has_attachments"`
	Snippet        string    `json:"snippet"`
	// Tags are the message's tags, sorted case-insensitively.
	Tags []string `json:"tags"`
}

// MessageList is a page of summaries, newest first, with the total number
// of matches.
type MessageList struct {
	// Total counts the matches: exactly when TotalExact, else at least
	// this many (a filter matching more than the server counts, 1,000;
	// Filter.ExactTotal asks for every match to be counted).
	Total      int       `json:"total"`
	TotalExact bool      `json:"total_exact"`
	Messages   []Summary `json:"messages"`
}

// Envelope is the SMTP envelope a message arrived with.
type Envelope struct {
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
}

// Attachment describes one attachment or inline part of a message. Fetch its
// content with [Client.Part] or [Message.AttachmentBytes].
type Attachment struct {
	Part        string `json:"part"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	ContentID   string `json:"content_id"`
	Inline      bool   `json:"inline"`
}

// Message is the whole message returned by GET /messages/{id}.
//
// A Message obtained from a [Client] remembers that client, so helpers such
// as [Message.AttachmentBytes] can fetch more data.
type Message struct {
	Summary
	Envelope    Envelope            `json:"envelope"`
	Bcc         []Address           `json:"bcc"`
	MessageID   string              `json:"message_id"`
	Headers     map[string][]string `json:"headers"`
	Text        string              `json:"text"`
	HTML        string              `json:"html"`
	Attachments []Attachment        `json:"attachments"`
	// ParseError is set when the sandbox could not fully parse the message
	// (it still stores the raw bytes).
	ParseError string `json:"parse_error,omitempty"`

	client *Client
}

// Header returns the first value of the named header (case-insensitive), or
// "".
func (m *Message) Header(name string) string {
	if v, ok := m.Headers[name]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range m.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Part is the content of one MIME part fetched with [Client.Part].
type Part struct {
	ContentType string
	Filename    string
	Data        []byte
}

// Delivery is one entry of the relay queue.
type Delivery struct {
	ID            string    `json:"id"`
	MessageID     string    `json:"message_id"`
	Subject       string    `json:"subject"` // the message's
	MailFrom      string    `json:"mail_from"`
	Recipients    []string  `json:"recipients"`
	Destination   string    `json:"destination"`
	Status        string    `json:"status"` // queued, sending, delivered or failed
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// LastAttemptAt is zero before the first attempt; NextAttemptAt is zero
	// once the delivery is delivered or failed.
	LastAttemptAt time.Time `json:"last_attempt_at"`
	// RecipientStatus is each recipient's own result.
	RecipientStatus []RecipientStatus `json:"recipient_status"`
}

// RecipientStatus is one recipient's result within a [Delivery].
type RecipientStatus struct {
	Address  string `json:"address"`
	Status   string `json:"status"` // queued, delivered or failed
	Attempts int    `json:"attempts"`
	Reply    string `json:"reply"` // the last SMTP reply or error
}

// Filter selects messages for [Client.Search], [Client.Wait] and
// [Client.WaitN]. Zero fields do not filter. To, From, Subject and Text match
// case-insensitive substrings; To matches envelope recipients and To/Cc
// addresses. Since and Before compare the time received. Limit and Offset
// page [Client.Search]; waits ignore them.
type Filter struct {
	To      string
	From    string
	Subject string
	Text    string
	Mailbox string
	// Tag keeps messages with this tag (exact, case-insensitive).
	Tag    string
	Since  time.Time
	Before time.Time
	Limit  int
	Offset int
	// BeforeID is a cursor for [Client.Search]: the page starts after that
	// message (older than it), so a deep page costs what the first did.
	// It takes Before's place on the wire; see [MessageList.NextFilter].
	BeforeID string
	// ExactTotal makes [Client.Search] count every match: without it a
	// filter matching more than 1,000 reports Total 1,000 and TotalExact
	// false, so the page costs what it shows.
	ExactTotal bool
}

func (f Filter) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("to", f.To)
	set("from", f.From)
	set("subject", f.Subject)
	set("text", f.Text)
	set("mailbox", f.Mailbox)
	set("tag", f.Tag)
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Before.IsZero() {
		v.Set("before", f.Before.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset > 0 {
		v.Set("offset", strconv.Itoa(f.Offset))
	}
	set("before", f.BeforeID)
	if f.ExactTotal {
		v.Set("total", "exact")
	}
	return v
}

// String describes the filter for error messages, e.g.
// `to="bob@example.com" subject="Welcome"`.
func (f Filter) String() string {
	var b strings.Builder
	add := func(k, s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(s))
	}
	add("to", f.To)
	add("from", f.From)
	add("subject", f.Subject)
	add("text", f.Text)
	add("mailbox", f.Mailbox)
	if !f.Since.IsZero() {
		add("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Before.IsZero() {
		add("before", f.Before.UTC().Format(time.RFC3339Nano))
	}
	if b.Len() == 0 {
		return "any message"
	}
	return b.String()
}

// ListOptions pages a mailbox listing. Zero values mean the server defaults
// (folder INBOX, the server's page size, offset 0).
type ListOptions struct {
	Folder string
	Limit  int
	Offset int
	// BeforeID is a cursor: see [MessageList.NextOptions].
	BeforeID string
}

// SendRequest is a message to submit through POST /messages as JSON. The
// sandbox builds the MIME message and files it as if it arrived over SMTP.
type SendRequest struct {
	From        string           `json:"from"`
	To          []string         `json:"to"`
	Cc          []string         `json:"cc,omitempty"`
	Bcc         []string         `json:"bcc,omitempty"`
	Subject     string           `json:"subject"`
	Text        string           `json:"text,omitempty"`
	HTML        string           `json:"html,omitempty"`
	Attachments []SendAttachment `json:"attachments,omitempty"`
}

// SendAttachment is one attachment of a [SendRequest]. Content is sent
// base64-encoded.
type SendAttachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Content     []byte `json:"content_base64"`
}
