package rest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	netmail "net/mail"
	"os"
	"path"
	"reflect"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// POST /messages: a raw message (message/rfc822, also text/plain or
// application/octet-stream) or JSON fields; the message goes through
// store.Ingest, the same path SMTP takes. Answers 201 {"id": …}.
func (s *Server) submitMessage(c echo.Context) error {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "" || mt == "application/x-www-form-urlencoded" {
		// curl -d without -H: a JSON object is JSON, anything else a message.
		br := bufio.NewReader(r.Body)
		if looksLikeJSON(br) {
			mt = "application/json"
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{br, r.Body}
	}
	var (
		env    store.Envelope
		raw    []byte
		err    error
		format string
	)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		format = "json"
		env, raw, err = s.readJSONMessage(c)
	case mt == "", mt == "message/rfc822", mt == "text/plain", mt == "application/octet-stream",
		mt == "application/x-www-form-urlencoded", mt == "text/rfc822-headers":
		format = "raw"
		env, raw, err = s.readRawMessage(c)
	default:
		return echo.NewHTTPError(http.StatusUnsupportedMediaType,
			fmt.Sprintf("content type %q: send message/rfc822 or application/json", mt))
	}
	if err != nil {
		return err
	}
	if len(env.To) > s.opts.MaxRecipients {
		return errBadRequest("too many recipients: %d, at most %d per message", len(env.To), s.opts.MaxRecipients)
	}
	id, err := s.st.Ingest(r.Context(), env, raw)
	if err != nil {
		return fmt.Errorf("submit message: %w", err)
	}
	s.metrics.submitted.WithLabelValues(format).Inc()
	c.Response().Header().Set("Location", apiPrefix+"/messages/"+id)
	return c.JSON(http.StatusCreated, map[string]string{"id": id})
}

// looksLikeJSON reports whether the body starts with "{" after blanks.
func looksLikeJSON(br *bufio.Reader) bool {
	b, _ := br.Peek(512)
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func (s *Server) readRawMessage(c echo.Context) (store.Envelope, []byte, error) {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, s.opts.MaxMessageBytes)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return store.Envelope{}, nil, err
		}
		return store.Envelope{}, nil, errBadRequest("read message: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return store.Envelope{}, nil, errBadRequest("empty message")
	}
	p := mailparse.Parse(raw)
	var env store.Envelope
	env.From = p.From.Address
	if env.From == "" {
		for _, k := range []string{"Sender", "Return-Path"} {
			if v := p.Headers[k]; len(v) > 0 {
				if a, err := mailAddress(v[0]); err == nil {
					env.From = a.Address
					break
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, list := range [][]store.Address{p.To, p.Cc, p.Bcc} {
		for _, a := range list {
			// mailparse salvages what Go's parser refuses; a leftover that
			// is no address (no '@') names no recipient.
			n := store.NormalizeAddress(a.Address)
			if n == "" || seen[n] || !strings.Contains(n, "@") {
				continue
			}
			seen[n] = true
			env.To = append(env.To, a.Address)
		}
	}
	if len(env.To) == 0 {
		return env, nil, errBadRequest("no recipients: the message has no To, Cc or Bcc address")
	}
	return env, raw, nil
}

// stringList is a JSON list of strings that also accepts one string.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		if strings.TrimSpace(one) != "" {
			*l = stringList{one}
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		// The decoder adds the field name to a type error.
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[stringList]()}
	}
	*l = many
	return nil
}

// submitJSON is the JSON form of POST /messages.
type submitJSON struct {
	From        string            `json:"from"`
	To          stringList        `json:"to"`
	Cc          stringList        `json:"cc"`
	Bcc         stringList        `json:"bcc"`
	ReplyTo     stringList        `json:"reply_to"`
	Subject     string            `json:"subject"`
	Text        string            `json:"text"`
	HTML        string            `json:"html"`
	Headers     map[string]string `json:"headers"`
	Attachments []struct {
		Filename      string `json:"filename"`
		ContentType   string `json:"content_type"`
		ContentBase64 string `json:"content_base64"`
		ContentID     string `json:"content_id"`
		Inline        bool   `json:"inline"`
	} `json:"attachments"`
}

// defaultFrom is the sender of JSON submissions that name none.
const defaultFrom = "mailsandbox@localhost"

func (s *Server) readJSONMessage(c echo.Context) (store.Envelope, []byte, error) {
	// Base64 grows content by 4/3; leave room for the other fields.
	limit := s.opts.MaxMessageBytes/3*4 + 1<<20
	var in submitJSON
	if err := decodeJSON(http.MaxBytesReader(c.Response(), c.Request().Body, limit), &in); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return store.Envelope{}, nil, &http.MaxBytesError{Limit: s.opts.MaxMessageBytes}
		}
		return store.Envelope{}, nil, errBadRequest("invalid JSON body: %s", jsonProblem(err))
	}
	raw, env, err := buildMessage(in, time.Now())
	if err != nil {
		return env, nil, err
	}
	if int64(len(raw)) > s.opts.MaxMessageBytes {
		return env, nil, &http.MaxBytesError{Limit: s.opts.MaxMessageBytes}
	}
	return env, raw, nil
}

func mailAddress(s string) (store.Address, error) {
	a, err := netmail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return store.Address{}, err
	}
	return store.Address{Name: a.Name, Address: a.Address}, nil
}

func addressList(field string, in []string) ([]*mail.Address, error) {
	var out []*mail.Address
	for _, s := range in {
		if strings.TrimSpace(s) == "" {
			continue
		}
		a, err := mailAddress(s)
		if err != nil {
			return nil, errBadRequest("%s: invalid address %q", field, s)
		}
		out = append(out, &mail.Address{Name: a.Name, Address: a.Address})
	}
	return out, nil
}

// buildMessage writes a MIME message from the JSON fields: text and HTML as
// multipart/alternative, attachments around it in multipart/mixed.
func buildMessage(in submitJSON, now time.Time) ([]byte, store.Envelope, error) {
	var env store.Envelope
	if strings.TrimSpace(in.From) == "" {
		in.From = defaultFrom
	}
	from, err := addressList("from", []string{in.From})
	if err != nil {
		return nil, env, err
	}
	to, err := addressList("to", in.To)
	if err != nil {
		return nil, env, err
	}
	cc, err := addressList("cc", in.Cc)
	if err != nil {
		return nil, env, err
	}
	bcc, err := addressList("bcc", in.Bcc)
	if err != nil {
		return nil, env, err
	}
	replyTo, err := addressList("reply_to", in.ReplyTo)
	if err != nil {
		return nil, env, err
	}
	env.From = from[0].Address
	for _, list := range [][]*mail.Address{to, cc, bcc} {
		for _, a := range list {
			env.To = append(env.To, a.Address)
		}
	}
	if len(env.To) == 0 {
		return nil, env, errBadRequest("no recipients: set to, cc or bcc")
	}

	var h mail.Header
	for k, v := range in.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n") {
			return nil, env, errBadRequest("headers: invalid header %q", k)
		}
		h.Set(k, mime.QEncoding.Encode("utf-8", v))
	}
	h.SetDate(now)
	h.SetAddressList("From", from)
	if len(to) > 0 {
		h.SetAddressList("To", to)
	}
	if len(cc) > 0 {
		h.SetAddressList("Cc", cc)
	}
	if len(replyTo) > 0 {
		h.SetAddressList("Reply-To", replyTo)
	}
	h.SetSubject(in.Subject)
	if h.Get("Message-Id") == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "mailsandbox.localhost"
		}
		if err := h.GenerateMessageIDWithHostname(host); err != nil {
			return nil, env, fmt.Errorf("make message id: %w", err)
		}
	}

	type leaf struct {
		h    message.Header
		body []byte
	}
	textLeaf := func(ct, body string) leaf {
		var lh message.Header
		lh.SetContentType(ct, map[string]string{"charset": "utf-8"})
		lh.Set("Content-Transfer-Encoding", "quoted-printable")
		return leaf{lh, []byte(body)}
	}
	var bodies []leaf
	if in.Text != "" || in.HTML == "" {
		bodies = append(bodies, textLeaf("text/plain", in.Text))
	}
	if in.HTML != "" {
		bodies = append(bodies, textLeaf("text/html", in.HTML))
	}
	var atts []leaf
	for i, a := range in.Attachments {
		data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(a.ContentBase64), ""))
		if err != nil {
			if data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.Join(strings.Fields(a.ContentBase64), ""), "=")); err != nil {
				return nil, env, errBadRequest("attachments[%d]: content_base64 is not base64", i)
			}
		}
		ct := a.ContentType
		if ct == "" {
			// As mail clients do: the type the file name implies.
			ct = mime.TypeByExtension(path.Ext(a.Filename))
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, env, errBadRequest("attachments[%d]: invalid content_type %q", i, a.ContentType)
		}
		name := a.Filename
		if name == "" && a.ContentID == "" {
			name = fmt.Sprintf("attachment-%d", i+1)
		}
		var lh message.Header
		if name != "" {
			params["name"] = name
		}
		lh.SetContentType(mt, params)
		disp := "attachment"
		if a.Inline || a.ContentID != "" {
			disp = "inline"
		}
		dp := map[string]string{}
		if name != "" {
			dp["filename"] = name
		}
		lh.SetContentDisposition(disp, dp)
		if a.ContentID != "" {
			lh.Set("Content-Id", "<"+strings.Trim(a.ContentID, "<>")+">")
		}
		lh.Set("Content-Transfer-Encoding", "base64")
		atts = append(atts, leaf{lh, data})
	}

	var buf bytes.Buffer
	writeLeaf := func(w *message.Writer, l leaf) error {
		pw, err := w.CreatePart(l.h)
		if err != nil {
			return err
		}
		if _, err := pw.Write(l.body); err != nil {
			return err
		}
		return pw.Close()
	}
	writeAlternative := func(w *message.Writer) error {
		var ah message.Header
		ah.SetContentType("multipart/alternative", nil)
		aw, err := w.CreatePart(ah)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			if err := writeLeaf(aw, b); err != nil {
				return err
			}
		}
		return aw.Close()
	}
	err = func() error {
		switch {
		case len(atts) == 0 && len(bodies) == 1:
			top := h.Copy()
			for f := bodies[0].h.Fields(); f.Next(); {
				top.Set(f.Key(), f.Value())
			}
			w, err := message.CreateWriter(&buf, top.Header)
			if err != nil {
				return err
			}
			if _, err := w.Write(bodies[0].body); err != nil {
				return err
			}
			return w.Close()
		case len(atts) == 0:
			top := h.Copy()
			top.SetContentType("multipart/alternative", nil)
			w, err := message.CreateWriter(&buf, top.Header)
			if err != nil {
				return err
			}
			for _, b := range bodies {
				if err := writeLeaf(w, b); err != nil {
					return err
				}
			}
			return w.Close()
		default:
			top := h.Copy()
			top.SetContentType("multipart/mixed", nil)
			w, err := message.CreateWriter(&buf, top.Header)
			if err != nil {
				return err
			}
			if len(bodies) == 1 {
				err = writeLeaf(w, bodies[0])
			} else {
				err = writeAlternative(w)
			}
			if err != nil {
				return err
			}
			for _, a := range atts {
				if err := writeLeaf(w, a); err != nil {
					return err
				}
			}
			return w.Close()
		}
	}()
	if err != nil {
		return nil, env, fmt.Errorf("build message: %w", err)
	}
	return buf.Bytes(), env, nil
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r >= 0x7f || r == ':' {
			return false
		}
	}
	switch strings.ToLower(k) {
	case "content-type", "content-transfer-encoding", "mime-version", "from", "to", "cc", "bcc", "subject", "date":
		return false
	}
	return true
}
