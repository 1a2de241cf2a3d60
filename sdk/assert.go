package sdk

import (
	"context"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
)

var (
	hrefRE    = regexp.MustCompile(`(?is)\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
	textURLRE = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"'` + "`" + `]+`)
	tagRE     = regexp.MustCompile(`(?s)<[^>]*>`)
	styleRE   = regexp.MustCompile(`(?is)<(script|style)\b.*?</(script|style)\s*>`)
)

// Links returns the links of the message: the href targets of its HTML
// body (entities decoded), then the http(s) URLs in its text body, without
// duplicates, in order of appearance.
func (m *Message) Links() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	for _, sm := range hrefRE.FindAllStringSubmatch(m.HTML, -1) {
		add(html.UnescapeString(sm[1] + sm[2] + sm[3]))
	}
	for _, u := range textURLRE.FindAllString(m.Text, -1) {
		add(strings.TrimRight(u, ".,;:!?)]}>"))
	}
	return out
}

// FindLink returns the first link (see [Message.Links]) that contains substr.
// The error names the substring and lists the links the message has.
func (m *Message) FindLink(substr string) (string, error) {
	links := m.Links()
	for _, l := range links {
		if strings.Contains(l, substr) {
			return l, nil
		}
	}
	return "", fmt.Errorf("sdk: no link containing %q in %s; links: %s", substr, m.describe(), listOrNone(links))
}

// FindLinkRegexp returns the first link (see [Message.Links]) that matches
// the regular expression pattern.
func (m *Message) FindLinkRegexp(pattern string) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("sdk: find link: %w", err)
	}
	links := m.Links()
	for _, l := range links {
		if re.MatchString(l) {
			return l, nil
		}
	}
	return "", fmt.Errorf("sdk: no link matching /%s/ in %s; links: %s", pattern, m.describe(), listOrNone(links))
}

// ExtractCode finds the regular expression pattern in the message's text
// body, then its subject, then its HTML body with the tags removed, and
// returns the first submatch if the pattern has a group, else the whole
// match. For example ExtractCode(`code: (\d{6})`) or ExtractCode(`\b\d{6}\b`).
func (m *Message) ExtractCode(pattern string) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", fmt.Errorf("sdk: extract code: %w", err)
	}
	for _, s := range []string{m.Text, m.Subject, htmlText(m.HTML)} {
		sm := re.FindStringSubmatch(s)
		if sm == nil {
			continue
		}
		if len(sm) > 1 {
			for _, g := range sm[1:] {
				if g != "" {
					return g, nil
				}
			}
		}
		return sm[0], nil
	}
	return "", fmt.Errorf("sdk: no match for /%s/ in %s; text begins %q", pattern, m.describe(), clip(firstNonEmpty(m.Text, htmlText(m.HTML)), 200))
}

// Attachment returns the attachment or inline part called name: matched
// against the filename (exactly, then ignoring case), the part id and the
// content id.
func (m *Message) Attachment(name string) (*Attachment, error) {
	for _, match := range []func(a Attachment) bool{
		func(a Attachment) bool { return a.Filename == name },
		func(a Attachment) bool { return strings.EqualFold(a.Filename, name) },
		func(a Attachment) bool { return a.Part == name },
		func(a Attachment) bool {
			return strings.Trim(a.ContentID, "<>") == strings.Trim(name, "<>") && name != ""
		},
	} {
		for i := range m.Attachments {
			if match(m.Attachments[i]) {
				return &m.Attachments[i], nil
			}
		}
	}
	names := make([]string, 0, len(m.Attachments))
	for _, a := range m.Attachments {
		names = append(names, fmt.Sprintf("%q (part %s, %s)", a.Filename, a.Part, a.ContentType))
	}
	return nil, fmt.Errorf("sdk: no attachment %q in %s; attachments: %s", name, m.describe(), listOrNone(names))
}

// AttachmentBytes fetches the decoded content of the attachment called name
// (see [Message.Attachment]). The message must come from a [Client] (Get,
// Wait, WaitN).
func (m *Message) AttachmentBytes(ctx context.Context, name string) ([]byte, error) {
	a, err := m.Attachment(name)
	if err != nil {
		return nil, err
	}
	if m.client == nil {
		return nil, errors.New("sdk: attachment bytes: message was not fetched through a Client")
	}
	p, err := m.client.Part(ctx, m.ID, a.Part)
	if err != nil {
		return nil, err
	}
	return p.Data, nil
}

func (m *Message) describe() string {
	return fmt.Sprintf("message %s %q", m.ID, m.Subject)
}

// htmlText is a rough plain-text rendering of an HTML body for searching.
func htmlText(h string) string {
	if h == "" {
		return ""
	}
	h = styleRE.ReplaceAllString(h, " ")
	h = tagRE.ReplaceAllString(h, " ")
	return strings.Join(strings.Fields(html.UnescapeString(h)), " ")
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
