package rest

import (
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// summaryJSON is a message as listings, search, wait and SSE show it.
type summaryJSON struct {
	ID             string          `json:"id"`
	Mailboxes      []string        `json:"mailboxes"`
	From           store.Address   `json:"from"`
	To             []store.Address `json:"to"`
	Cc             []store.Address `json:"cc"`
	Subject        string          `json:"subject"`
	Date           *time.Time      `json:"date"` // null when the Date header is absent or unreadable
	ReceivedAt     time.Time       `json:"received_at"`
	Size           int64           `json:"size"`
	Seen           bool            `json:"seen"`
	HasAttachments bool            `json:"has_attachments"`
	Snippet        string          `json:"snippet"`
	Tags           []string        `json:"tags"`
}

type envelopeJSON struct {
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
}

// messageJSON is the whole message of GET /messages/{id}.
type messageJSON struct {
	summaryJSON
	Envelope    envelopeJSON        `json:"envelope"`
	Bcc         []store.Address     `json:"bcc"`
	MessageID   string              `json:"message_id"`
	Headers     map[string][]string `json:"headers"`
	Text        string              `json:"text"`
	HTML        string              `json:"html"`
	Attachments []mailparse.Part    `json:"attachments"`
	ParseError  string              `json:"parse_error,omitempty"`
}

type listJSON struct {
	Total int `json:"total"`
	// TotalExact is false when a filter matched more than the store
	// counts (store.CountCap): Total is then a lower bound.
	TotalExact bool          `json:"total_exact"`
	Messages   []summaryJSON `json:"messages"`
}

type mailboxJSON struct {
	Address  string     `json:"address"`
	Total    int        `json:"total"`
	Unread   int        `json:"unread"`
	LatestAt *time.Time `json:"latest_at"` // null for a mailbox without mail
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func addrs(list []store.Address) []store.Address {
	if list == nil {
		return []store.Address{}
	}
	return list
}

func toSummary(m store.Message) summaryJSON {
	mbs := m.Mailboxes
	if mbs == nil {
		mbs = []string{}
	}
	return summaryJSON{
		ID: m.ID, Mailboxes: mbs, From: m.From, To: addrs(m.To), Cc: addrs(m.Cc), Subject: m.Subject,
		Date: optTime(m.Date), ReceivedAt: m.ReceivedAt.UTC(), Size: m.Size, Seen: m.Seen,
		HasAttachments: m.HasAttachments, Snippet: m.Snippet, Tags: nonNilTags(m.Tags),
	}
}

func toSummaries(ms []store.Message) []summaryJSON {
	out := make([]summaryJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, toSummary(m))
	}
	return out
}

// toMessage joins the stored summary with a fresh parse of the raw bytes.
func toMessage(m store.Message, p *mailparse.Message) messageJSON {
	rcpt := m.Envelope.To
	if rcpt == nil {
		rcpt = []string{}
	}
	headers := p.Headers
	if headers == nil {
		headers = map[string][]string{}
	}
	atts := p.Attachments
	if atts == nil {
		atts = []mailparse.Part{}
	}
	return messageJSON{
		summaryJSON: toSummary(m),
		Envelope:    envelopeJSON{MailFrom: m.Envelope.From, RcptTo: rcpt},
		Bcc:         bcc(m, p),
		MessageID:   m.MessageID,
		Headers:     headers,
		Text:        p.Text,
		HTML:        p.HTML,
		Attachments: atts,
		ParseError:  m.ParseError,
	}
}

// bcc lists the envelope recipients that the To and Cc headers do not name,
// with the display name from a Bcc header when the message kept one.
func bcc(m store.Message, p *mailparse.Message) []store.Address {
	visible := map[string]bool{}
	for _, a := range append(append([]store.Address{}, m.To...), m.Cc...) {
		visible[store.NormalizeAddress(a.Address)] = true
	}
	names := map[string]string{}
	for _, a := range p.Bcc {
		names[store.NormalizeAddress(a.Address)] = a.Name
	}
	out := []store.Address{}
	for _, r := range m.Envelope.To {
		n := store.NormalizeAddress(r)
		if n == "" || visible[n] {
			continue
		}
		visible[n] = true
		out = append(out, store.Address{Name: names[n], Address: strings.Trim(strings.TrimSpace(r), "<>")})
	}
	return out
}

func nonNilTags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}
