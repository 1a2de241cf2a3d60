package mailpit

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// errBadQuery marks a resolve failure caused by the ?query= of latest.
var errBadQuery = errors.New("bad query")

// resolve turns an ID path parameter into a stored message's id: "latest"
// is the newest message, or with ?query= the newest match.
func (s *Server) resolve(c echo.Context, id string) (string, error) {
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	if id != "latest" {
		return id, nil
	}
	q := store.Query{Limit: 1}
	if query := strings.TrimSpace(c.QueryParam("query")); query != "" {
		conds, err := parseQuery(c, query)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errBadQuery, err)
		}
		q.Conds = conds
	}
	msgs, err := s.st.Find(c.Request().Context(), q)
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "", fmt.Errorf("latest message: %w", store.ErrNotFound)
	}
	return msgs[0].ID, nil
}

// load reads a message's summary, raw bytes and parse.
func (s *Server) load(c echo.Context) (store.Message, []byte, error) {
	id, err := s.resolve(c, c.Param("id"))
	if err != nil {
		return store.Message{}, nil, err
	}
	ctx := c.Request().Context()
	m, err := s.st.Get(ctx, id)
	if err != nil {
		return m, nil, err
	}
	raw, err := s.st.Raw(ctx, id)
	return m, raw, err
}

// loadFail answers a load error.
func (s *Server) loadFail(c echo.Context, err error) error {
	if errors.Is(err, errBadQuery) {
		return text(c, http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadQuery.Error()+": "))
	}
	if c.Param("id") == "latest" && errors.Is(err, store.ErrNotFound) {
		return c.Blob(http.StatusNotFound, "text/plain; charset=utf-8", []byte("Message not found"))
	}
	return s.fail(c, err)
}

// getMessage is GET /api/v1/message/{ID}: the whole message; marks every
// copy read.
func (s *Server) getMessage(c echo.Context) error {
	m, raw, err := s.load(c)
	if err != nil {
		return s.loadFail(c, err)
	}
	out := buildMessage(m, raw)
	if !m.Seen {
		if err := s.st.SetSeen(c.Request().Context(), m.ID, "", true); err != nil && !errors.Is(err, store.ErrNotFound) {
			return s.fail(c, err)
		}
	}
	return c.JSON(http.StatusOK, out)
}

func buildMessage(m store.Message, raw []byte) messageJSON {
	p := mailparse.Parse(raw)
	// The Date header keeps its own offset; without one, the receipt time.
	date, err := mail.ParseDate(first(p.Headers, "Date"))
	if err != nil {
		date = p.Date
	}
	if date.IsZero() {
		date = created(m.ReceivedAt)
	}
	// Mailpit's Return-Path is the envelope sender (its SMTP server
	// replaces the header with it).
	returnPath := m.Envelope.From
	if returnPath == "" {
		returnPath = strings.Trim(strings.TrimSpace(first(p.Headers, "Return-Path")), "<>")
	}
	text := textBody(p)
	out := messageJSON{
		ID: m.ID, MessageID: p.MessageID, From: fromAddr(p.From),
		To: addrList(p.To), Cc: addrList(p.Cc), Bcc: addrList(m.Bcc), ReplyTo: addrList(p.ReplyTo),
		ReturnPath: returnPath, Subject: p.Subject, Date: date, Tags: nonNilTags(m.Tags), Username: m.Envelope.Username,
		Text: text, HTML: p.HTML, Size: int64(len(raw)), Inline: []partJSON{}, Attachments: []partJSON{},
		ListUnsubscribe: listUnsubscribeJSON{Links: []string{}},
	}
	if h := first(p.Headers, "List-Unsubscribe"); h != "" {
		out.ListUnsubscribe.Header = h
		out.ListUnsubscribe.Links, out.ListUnsubscribe.Errors = parseListUnsubscribe(h)
		out.ListUnsubscribe.HeaderPost = first(p.Headers, "List-Unsubscribe-Post")
	}
	for _, a := range p.Attachments {
		pj := partJSON{PartID: a.ID, FileName: a.Filename, ContentType: a.ContentType, ContentID: a.ContentID, Size: a.Size}
		if body, _, _, err := mailparse.PartBody(raw, a.ID); err == nil {
			pj.Checksums = checksums(body)
		}
		if a.Inline {
			out.Inline = append(out.Inline, pj)
		} else {
			out.Attachments = append(out.Attachments, pj)
		}
	}
	return out
}

func checksums(b []byte) checksumsJSON {
	m, s1, s256 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b)
	return checksumsJSON{MD5: hex.EncodeToString(m[:]), SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s256[:])}
}

// first is a header's first value; the map's keys are canonical.
func first(h map[string][]string, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// headers is GET /api/v1/message/{ID}/headers: {"Name":["value",…]}.
func (s *Server) headers(c echo.Context) error {
	_, raw, err := s.load(c)
	if err != nil {
		return s.loadFail(c, err)
	}
	return c.JSON(http.StatusOK, rawHeaders(raw))
}

// raw is GET /api/v1/message/{ID}/raw: the source as received.
func (s *Server) raw(c echo.Context) error {
	_, raw, err := s.load(c)
	if err != nil {
		return s.loadFail(c, err)
	}
	if c.QueryParam("dl") == "1" {
		c.Response().Header().Set("Content-Disposition", `attachment; filename="`+c.Param("id")+`.eml"`)
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", raw)
}

// part is GET /api/v1/message/{ID}/part/{PartID}: the decoded part.
func (s *Server) part(c echo.Context) error {
	_, raw, err := s.load(c)
	if err != nil {
		return s.loadFail(c, err)
	}
	body, ct, filename, err := mailparse.PartBody(raw, c.Param("part"))
	if err != nil {
		return text(c, http.StatusNotFound, "attachment not found")
	}
	// The part's media type alone, as Mailpit sends it.
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		ct = mt
	} else {
		ct = "application/octet-stream"
	}
	disp := "inline"
	if c.QueryParam("dl") == "1" {
		disp = "attachment"
	}
	if filename != "" {
		c.Response().Header().Set("Content-Disposition", disp+`; filename="`+strings.ReplaceAll(filename, `"`, "")+`"`)
	}
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, ct, body)
}

// thumb is GET /api/v1/message/{ID}/part/{PartID}/thumb: a 180×120 JPEG
// of an image part.
func (s *Server) thumb(c echo.Context) error {
	_, raw, err := s.load(c)
	if err != nil {
		return s.loadFail(c, err)
	}
	body, ct, _, err := mailparse.PartBody(raw, c.Param("part"))
	if err != nil {
		return text(c, http.StatusBadRequest, "attachment not found")
	}
	// Like Mailpit, a part that is not a readable image gets a blank
	// thumbnail rather than an error: UIs show one for every attachment.
	if !strings.HasPrefix(ct, "image/") {
		body = nil
	}
	jpg, err := thumbnail(bytes.NewReader(body))
	if err != nil {
		return s.fail(c, err)
	}
	return c.Blob(http.StatusOK, "image/jpeg", jpg)
}

type releaseRequest struct {
	To []string
}

// release is POST /api/v1/message/{ID}/release: onto the relay queue.
func (s *Server) release(c echo.Context) error {
	var req releaseRequest
	if err := readJSON(c, &req); err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	var to []string
	for _, a := range req.To {
		if a = strings.TrimSpace(a); a != "" {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return text(c, http.StatusBadRequest, "No valid addresses found")
	}
	id, err := s.resolve(c, c.Param("id"))
	if err != nil {
		return s.loadFail(c, err)
	}
	if _, err := s.st.Get(c.Request().Context(), id); err != nil {
		return s.fail(c, err)
	}
	if s.opts.Relay == nil {
		return text(c, http.StatusBadRequest, "SMTP relay is not configured")
	}
	if err := s.opts.Relay.Release(c.Request().Context(), id, to); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return s.fail(c, err)
		}
		return text(c, http.StatusBadRequest, err.Error())
	}
	return okText(c)
}

// textBody is the text of a message; as Mailpit's, a message with HTML
// only has that HTML, stripped, as its text.
func textBody(p *mailparse.Message) string {
	if p.Text == "" && p.HTML != "" {
		return strings.TrimSpace(mailparse.StripHTML(p.HTML))
	}
	return p.Text
}

// rawHeaders are the top header's fields as sent (encoded words left
// encoded, folded lines joined), by canonical name, as Mailpit shows
// them; a header net/textproto cannot read falls back to the parser's.
func rawHeaders(raw []byte) map[string][]string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw[:end]), strings.NewReader("\r\n\r\n"))))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		h = mailparse.Parse(raw).Headers
	}
	if h == nil {
		return map[string][]string{}
	}
	return h
}
