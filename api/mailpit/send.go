package mailpit

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/textproto"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// sendAddress is one of Mailpit's {"Email","Name"} objects.
type sendAddress struct {
	Email string
	Name  string
}

type sendAttachment struct {
	Content     string // base64
	Filename    string
	ContentType string
	ContentID   string // makes the attachment inline
}

// sendRequest is POST /api/v1/send's body, in Mailpit's field names.
type sendRequest struct {
	From        sendAddress
	To          []sendAddress
	Cc          []sendAddress
	Bcc         []string
	ReplyTo     []sendAddress
	Subject     string
	Text        string
	HTML        string
	Headers     map[string]string
	Tags        []string
	Attachments []sendAttachment
}

// sendError answers {"Error": msg}, as Mailpit's send does.
func sendError(c echo.Context, code int, msg string) error {
	return c.JSON(code, map[string]string{"Error": msg})
}

// send is POST /api/v1/send: build a message from JSON and capture it as
// SMTP would, into every recipient's mailbox (Bcc included).
func (s *Server) send(c echo.Context) error {
	// base64 grows attachments by a third; the built message is checked
	// against the limit itself below.
	limit := s.opts.MaxMessageBytes/3*4 + 1<<20
	r := http.MaxBytesReader(c.Response(), c.Request().Body, limit)
	var req sendRequest
	body, err := io.ReadAll(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return sendError(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		}
		return sendError(c, http.StatusBadRequest, "read request: "+err.Error())
	}
	if err := decodeStrict(body, &req); err != nil {
		return sendError(c, http.StatusBadRequest, err.Error())
	}
	raw, env, err := buildSend(req, time.Now())
	if err != nil {
		return sendError(c, http.StatusBadRequest, "error building message: "+err.Error())
	}
	if int64(len(raw)) > s.opts.MaxMessageBytes {
		return sendError(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("message larger than %d bytes", s.opts.MaxMessageBytes))
	}
	id, err := s.st.Ingest(c.Request().Context(), env, raw)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return sendError(c, http.StatusBadRequest, err.Error())
		}
		s.log.Error("mailpit send: store message", "err", err)
		return sendError(c, http.StatusInternalServerError, "message not stored")
	}
	return c.JSON(http.StatusOK, map[string]string{"ID": id})
}

// decodeStrict reads one JSON value; bad JSON is a plain reason.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("invalid JSON body: empty body")
	}
	return readJSONBytes(body, v)
}

// buildSend renders the request as an RFC 5322 message and its envelope.
func buildSend(req sendRequest, now time.Time) ([]byte, store.Envelope, error) {
	var env store.Envelope
	if strings.TrimSpace(req.From.Email) == "" {
		return nil, env, errors.New("from not set")
	}
	from, err := checkAddr("From", req.From)
	if err != nil {
		return nil, env, err
	}
	env.From = from.Address
	var to, cc, replyTo []*mail.Address
	for _, list := range []struct {
		name string
		in   []sendAddress
		out  *[]*mail.Address
	}{{"To", req.To, &to}, {"Cc", req.Cc, &cc}, {"ReplyTo", req.ReplyTo, &replyTo}} {
		for _, a := range list.in {
			m, err := checkAddr(list.name, a)
			if err != nil {
				return nil, env, err
			}
			*list.out = append(*list.out, m)
		}
	}
	for _, a := range append(append([]*mail.Address{}, to...), cc...) {
		env.To = append(env.To, a.Address)
	}
	for _, b := range req.Bcc {
		m, err := checkAddr("Bcc", sendAddress{Email: b})
		if err != nil {
			return nil, env, err
		}
		env.To = append(env.To, m.Address)
	}
	if len(env.To) == 0 {
		return nil, env, errors.New("no recipients (to, cc, bcc) set")
	}
	var b bytes.Buffer
	h := textproto.MIMEHeader{}
	set := func(k, v string) { h.Set(k, v) }
	set("From", from.String())
	if len(to) > 0 {
		set("To", joinAddrs(to))
	}
	if len(cc) > 0 {
		set("Cc", joinAddrs(cc))
	}
	if len(replyTo) > 0 {
		set("Reply-To", joinAddrs(replyTo))
	}
	set("Subject", mime.QEncoding.Encode("utf-8", req.Subject))
	set("Date", now.Format(time.RFC1123Z))
	set("Message-Id", "<"+randomToken()+"@mailsandbox>")
	set("Mime-Version", "1.0")
	if len(req.Tags) > 0 {
		// The X-Tags header is how Mailpit carries tags in a message.
		set("X-Tags", strings.Join(req.Tags, ", "))
	}
	for k, v := range req.Headers {
		if !validHeaderName(k) {
			return nil, env, fmt.Errorf("invalid header name %q", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, env, fmt.Errorf("header %s: value must be one line", k)
		}
		set(k, v)
	}
	var inline, attached []sendAttachment
	for _, a := range req.Attachments {
		if _, err := base64.StdEncoding.DecodeString(a.Content); err != nil {
			return nil, env, fmt.Errorf("attachment %q: content is not valid base64", a.Filename)
		}
		if a.ContentID != "" {
			inline = append(inline, a)
		} else {
			attached = append(attached, a)
		}
	}
	body, top := buildBody(req.Text, req.HTML, inline, attached)
	for k, v := range top {
		h[k] = v
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes(), env, nil
}

func checkAddr(field string, a sendAddress) (*mail.Address, error) {
	m, err := mail.ParseAddress(strings.TrimSpace(a.Email))
	if err != nil || m.Name != "" {
		return nil, fmt.Errorf("invalid %s address: %q", field, a.Email)
	}
	m.Name = a.Name
	return m, nil
}

func joinAddrs(list []*mail.Address) string {
	s := make([]string, len(list))
	for i, a := range list {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r >= 127 || r == ':' {
			return false
		}
	}
	return true
}

func randomToken() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// buildBody nests mixed(related(alternative(text, html), inline…),
// attachments…), leaving out the levels that are not needed.
func buildBody(textBody, htmlBody string, inline, attached []sendAttachment) ([]byte, textproto.MIMEHeader) {
	type part struct {
		header textproto.MIMEHeader
		body   []byte
	}
	textPart := func(ct, s string) part {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", ct+"; charset=utf-8")
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		return part{h, qp(s)}
	}
	multi := func(kind string, parts []part) part {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for _, p := range parts {
			pw, _ := w.CreatePart(p.header)
			pw.Write(p.body)
		}
		w.Close()
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "multipart/"+kind+"; boundary="+w.Boundary())
		return part{h, b.Bytes()}
	}
	file := func(a sendAttachment, disp string) part {
		h := textproto.MIMEHeader{}
		ct := a.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(fileExt(a.Filename))
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		name := mime.QEncoding.Encode("utf-8", a.Filename)
		h.Set("Content-Type", ct+"; name=\""+name+"\"")
		h.Set("Content-Disposition", disp+"; filename=\""+name+"\"")
		h.Set("Content-Transfer-Encoding", "base64")
		if a.ContentID != "" {
			h.Set("Content-Id", "<"+a.ContentID+">")
		}
		return part{h, wrap76(a.Content)}
	}
	var root part
	switch {
	case textBody != "" && htmlBody != "":
		root = multi("alternative", []part{textPart("text/plain", textBody), textPart("text/html", htmlBody)})
	case htmlBody != "":
		root = textPart("text/html", htmlBody)
	default:
		root = textPart("text/plain", textBody)
	}
	if len(inline) > 0 {
		parts := []part{root}
		for _, a := range inline {
			parts = append(parts, file(a, "inline"))
		}
		root = multi("related", parts)
	}
	if len(attached) > 0 {
		parts := []part{root}
		for _, a := range attached {
			parts = append(parts, file(a, "attachment"))
		}
		root = multi("mixed", parts)
	}
	return root.body, root.header
}

func fileExt(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

func qp(s string) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func wrap76(s string) []byte {
	var b bytes.Buffer
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.Bytes()
}
