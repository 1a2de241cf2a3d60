package mailhog

import (
	"mime"
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// The JSON shapes below are MailHog's (mailhog/data message.go): Go field
// names, in its order, with its nulls. Clients decode them into their own
// copies of those structs, so a renamed or reordered field is a break.

// message is MailHog's data.Message.
type message struct {
	ID      string
	From    *path
	To      []*path
	Content *content
	Created time.Time
	MIME    *mimeBody
	Raw     *smtpMessage
}

// path is MailHog's forward-path or reverse-path, split.
type path struct {
	Relays  []string
	Mailbox string
	Domain  string
	Params  string
}

// content is one entity: headers as MailHog read them, the body undecoded.
type content struct {
	Headers map[string][]string
	Body    string
	Size    int
	MIME    *mimeBody
}

type smtpMessage struct {
	From string
	To   []string
	Data string
	Helo string
}

type mimeBody struct {
	Parts []*content
}

// toMessage builds MailHog's view of a stored message from its summary
// (id, envelope, time received) and its raw bytes.
func toMessage(m store.Message, raw []byte) message {
	// MailHog keeps DATA without the CRLF that precedes the final dot.
	data := strings.TrimSuffix(string(raw), "\r\n")
	var to []*path
	for _, r := range m.Envelope.To {
		to = append(to, splitPath(r))
	}
	c := parseContent(data)
	out := message{
		ID:      m.ID,
		From:    splitPath(m.Envelope.From),
		To:      to,
		Content: c,
		Created: m.ReceivedAt,
		// The sandbox does not keep the HELO name.
		Raw: &smtpMessage{From: m.Envelope.From, To: m.Envelope.To, Data: data},
	}
	if c.isMultipart() {
		// As MailHog: the top-level parts hang off Message.MIME, and
		// Content.MIME stays null; nested multiparts set their own.
		out.MIME = c.parseParts()
	}
	// MailHog adds these at receipt; add them the same way so clients that
	// read them find them (Received is left out: it would name a HELO the
	// sandbox did not keep).
	hasID := false
	returnPath := ""
	for k := range c.Headers {
		switch strings.ToLower(k) {
		case "message-id":
			hasID = true
		case "return-path":
			returnPath = k
		}
	}
	if !hasID {
		c.Headers["Message-ID"] = []string{m.ID}
	}
	if returnPath == "" {
		returnPath = "Return-Path"
	}
	c.Headers[returnPath] = append(c.Headers[returnPath], "<"+m.Envelope.From+">")
	return out
}

// splitPath splits "relay1,relay2:mailbox@domain" as MailHog does.
func splitPath(p string) *path {
	var relays []string
	addr := p
	if r, rest, ok := strings.Cut(p, ":"); ok {
		relays, addr = strings.Split(r, ","), rest
	}
	mailbox, domain, _ := strings.Cut(addr, "@")
	return &path{Relays: relays, Mailbox: mailbox, Domain: domain}
}

// parseContent splits an entity into headers and body the way MailHog
// does: at the first blank CRLF line; a header line needs ": "; folded
// lines join their header's value without the line break; a repeated
// header keeps its last value.
func parseContent(data string) *content {
	h := map[string][]string{}
	head, body, ok := strings.Cut(data, "\r\n\r\n")
	if !ok {
		return &content{Headers: h, Body: data, Size: len(data)}
	}
	last := ""
	for _, line := range strings.Split(head, "\r\n") {
		switch {
		case last != "" && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")):
			v := h[last]
			v[len(v)-1] += line
		case strings.Contains(line, ": "):
			k, v, _ := strings.Cut(line, ": ")
			h[k] = []string{v}
			last = k
		}
	}
	return &content{Headers: h, Body: body, Size: len(data)}
}

// isMultipart is MailHog's test: the Content-Type header, spelt exactly
// so, starts with "multipart/".
func (c *content) isMultipart() bool {
	v, ok := c.Headers["Content-Type"]
	return ok && len(v) > 0 && strings.HasPrefix(v[0], "multipart/")
}

// parseParts splits a multipart body at "--boundary", as MailHog v1.0.1
// does: every non-empty piece becomes a part, the preamble and what
// follows the closing delimiter ("--" and any epilogue) included, each
// trimmed of surrounding line breaks.
func (c *content) parseParts() *mimeBody {
	var parts []*content
	_, params, err := mime.ParseMediaType(c.Headers["Content-Type"][0])
	if boundary := params["boundary"]; err == nil && boundary != "" {
		for _, s := range strings.Split(c.Body, "--"+boundary) {
			if s == "" {
				continue
			}
			p := parseContent(strings.Trim(s, "\r\n"))
			if p.isMultipart() {
				p.MIME = p.parseParts()
			}
			parts = append(parts, p)
		}
	}
	return &mimeBody{Parts: parts}
}
