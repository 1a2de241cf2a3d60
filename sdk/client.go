// Package sdk is a typed Go client for the mailsandbox REST API (/api/v1).
//
// It has its own types and imports no server package, so a test suite that
// only talks to a running sandbox pulls in no SMTP server or database.
//
//	c := sdk.New("http://127.0.0.1:8025")
//	msg, err := c.Wait(ctx, sdk.Filter{To: "bob@example.com", Subject: "Welcome"})
//	link, err := msg.FindLink("/verify")
//
// For an in-process sandbox see package sdk/sandboxtest; for one in a
// container see sdk/sandboxcontainer.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client talks to one sandbox over HTTP. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	hc       *http.Client
	user     string
	password string
	auth     bool
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (for custom
// transports, TLS trust or timeouts). Note that [Client.Wait] and
// [Client.Events] hold requests open, so hc.Timeout should be zero or long.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithBasicAuth sends HTTP basic credentials with every request (for a
// sandbox started with --http-auth-file).
func WithBasicAuth(user, password string) Option {
	return func(c *Client) {
		c.user, c.password, c.auth = user, password, true
	}
}

// New returns a client for the sandbox whose HTTP listener is at baseURL,
// e.g. "http://127.0.0.1:8025". A bare "host:port" is taken as http. A path
// in baseURL is kept as a prefix (for a sandbox behind a reverse proxy).
func New(baseURL string, opts ...Option) *Client {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		// Keep the constructor infallible like http.NewRequest callers
		// expect of a base URL; report the problem on first use instead.
		u = &url.URL{Scheme: "invalid", Opaque: baseURL}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the sandbox URL the client was made for.
func (c *Client) BaseURL() string { return c.base.String() }

// ErrNotFound matches (with errors.Is) an [*Error] whose status is 404.
var ErrNotFound = errors.New("sdk: not found")

// Error is a non-2xx answer from the sandbox.
type Error struct {
	Method     string // HTTP method
	Path       string // request path and query
	StatusCode int
	Message    string // the server's {"error": …} text, or the body
	Context    string // what the caller was doing or looking for
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sdk: ")
	if e.Context != "" {
		b.WriteString(e.Context)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is reports whether target is [ErrNotFound] and this is a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// StatusCode returns the HTTP status of err if it is (or wraps) an [*Error],
// else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// request is one API call.
type request struct {
	method      string
	path        string // below /api/v1 unless it starts with "//"
	query       url.Values
	body        io.Reader
	contentType string
	context     string // for errors: what was looked for
}

func (c *Client) url(path string, q url.Values) string {
	// path segments are already escaped by the callers (esc), so build the
	// string directly instead of letting url.URL escape them a second time.
	u := *c.base
	u.RawQuery, u.Fragment = "", ""
	s := strings.TrimSuffix(u.String(), "/")
	if strings.HasPrefix(path, "//") {
		s += path[1:]
	} else {
		s += "/api/v1" + path
	}
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// do sends r and returns the response for a 2xx status; other statuses are
// turned into *Error and the body is closed.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	if c.base.Scheme == "invalid" {
		return nil, fmt.Errorf("sdk: invalid base URL %q", c.base.Opaque)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r.path, r.query), r.body)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", r.context, err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.auth {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if r.context != "" {
			return nil, fmt.Errorf("sdk: %s: %w", r.context, err)
		}
		return nil, fmt.Errorf("sdk: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{
		Method:     r.method,
		Path:       req.URL.RequestURI(),
		StatusCode: resp.StatusCode,
		Context:    r.context,
	}
	var je struct {
		Error   string `json:"error"`
		Message string `json:"message"` // echo's default error shape
	}
	if json.Unmarshal(body, &je) == nil && (je.Error != "" || je.Message != "") {
		e.Message = je.Error
		if e.Message == "" {
			e.Message = je.Message
		}
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	return nil, e
}

// doJSON sends r and decodes a JSON answer into out (if out is not nil).
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sdk: %s: decode %s %s answer: %w", r.context, r.method, r.path, err)
	}
	return nil
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode request: %w", err)
	}
	return bytes.NewReader(b), nil
}

func esc(s string) string { return url.PathEscape(s) }

// Health checks GET /healthz and returns nil when the sandbox is serving.
func (c *Client) Health(ctx context.Context) error {
	return c.doJSON(ctx, request{method: http.MethodGet, path: "//healthz", context: "health check"}, nil)
}

// Mailboxes lists every mailbox (GET /mailboxes).
func (c *Client) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	var out struct {
		Mailboxes []Mailbox `json:"mailboxes"`
	}
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/mailboxes", context: "list mailboxes"}, &out)
	return out.Mailboxes, err
}

// ListMailbox lists the messages of one mailbox, newest first
// (GET /mailboxes/{address}/messages).
func (c *Client) ListMailbox(ctx context.Context, address string, opts ListOptions) (*MessageList, error) {
	q := url.Values{}
	if opts.Folder != "" {
		q.Set("folder", opts.Folder)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	if opts.BeforeID != "" {
		q.Set("before", opts.BeforeID)
	}
	var out MessageList
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: "/mailboxes/" + esc(address) + "/messages", query: q,
		context: fmt.Sprintf("list mailbox %q", address),
	}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteMailbox empties one mailbox (DELETE /mailboxes/{address}).
func (c *Client) DeleteMailbox(ctx context.Context, address string) error {
	return c.doJSON(ctx, request{
		method: http.MethodDelete, path: "/mailboxes/" + esc(address),
		context: fmt.Sprintf("delete mailbox %q", address),
	}, nil)
}

// Search returns the messages matching f across all mail, newest first
// (GET /messages/search).
func (c *Client) Search(ctx context.Context, f Filter) (*MessageList, error) {
	var out MessageList
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: "/messages/search", query: f.values(),
		context: "search " + f.String(),
	}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns the whole message (GET /messages/{id}). A missing message
// gives an error matching [ErrNotFound].
func (c *Client) Get(ctx context.Context, id string) (*Message, error) {
	var m Message
	err := c.doJSON(ctx, request{
		method: http.MethodGet, path: "/messages/" + esc(id),
		context: fmt.Sprintf("get message %q", id),
	}, &m)
	if err != nil {
		return nil, err
	}
	m.client = c
	return &m, nil
}

// Raw returns the original bytes of a message (GET /messages/{id}/raw).
func (c *Client) Raw(ctx context.Context, id string) ([]byte, error) {
	ctxt := fmt.Sprintf("get raw message %q", id)
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/messages/" + esc(id) + "/raw", context: ctxt})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", ctxt, err)
	}
	return b, nil
}

// Part returns one attachment or inline part of a message
// (GET /messages/{id}/parts/{part}), with its content type and filename.
func (c *Client) Part(ctx context.Context, id, part string) (*Part, error) {
	ctxt := fmt.Sprintf("get part %q of message %q", part, id)
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/messages/" + esc(id) + "/parts/" + esc(part), context: ctxt})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("sdk: %s: %w", ctxt, err)
	}
	p := &Part{ContentType: resp.Header.Get("Content-Type"), Data: b}
	if cd := resp.Header.Get("Content-Disposition"); cd != "" {
		if _, params, err := mime.ParseMediaType(cd); err == nil {
			p.Filename = params["filename"]
		}
	}
	return p, nil
}

// Delete deletes a message from every mailbox (DELETE /messages/{id}).
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.doJSON(ctx, request{
		method: http.MethodDelete, path: "/messages/" + esc(id),
		context: fmt.Sprintf("delete message %q", id),
	}, nil)
}

// DeleteAll deletes every message (DELETE /messages).
func (c *Client) DeleteAll(ctx context.Context) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: "/messages", context: "delete all messages"}, nil)
}

// MarkSeen sets the seen state of a message in every mailbox
// (PATCH /messages/{id}).
func (c *Client) MarkSeen(ctx context.Context, id string, seen bool) error {
	return c.MarkSeenIn(ctx, id, "", seen)
}

// MarkSeenIn sets the seen state of a message in one mailbox only
// (PATCH /messages/{id}?mailbox=…); an empty mailbox means all of them.
func (c *Client) MarkSeenIn(ctx context.Context, id, mailbox string, seen bool) error {
	body, err := jsonBody(map[string]bool{"seen": seen})
	if err != nil {
		return err
	}
	q := url.Values{}
	if mailbox != "" {
		q.Set("mailbox", mailbox)
	}
	return c.doJSON(ctx, request{
		method: http.MethodPatch, path: "/messages/" + esc(id), query: q, body: body,
		contentType: "application/json",
		context:     fmt.Sprintf("mark message %q seen=%v", id, seen),
	}, nil)
}

type idAnswer struct {
	ID  string   `json:"id"`
	IDs []string `json:"ids"`
}

func (a idAnswer) id() string {
	if a.ID == "" && len(a.IDs) > 0 {
		return a.IDs[0]
	}
	return a.ID
}

// Send submits a message given as fields through the capture path
// (POST /messages with JSON) and returns its id.
func (c *Client) Send(ctx context.Context, m SendRequest) (string, error) {
	body, err := jsonBody(m)
	if err != nil {
		return "", err
	}
	var out idAnswer
	err = c.doJSON(ctx, request{
		method: http.MethodPost, path: "/messages", body: body, contentType: "application/json",
		context: fmt.Sprintf("send message %q to %v", m.Subject, m.To),
	}, &out)
	return out.id(), err
}

// SendRaw submits a raw RFC 5322 message through the capture path
// (POST /messages as message/rfc822); recipients come from its To, Cc and
// Bcc headers. It returns the new message's id.
func (c *Client) SendRaw(ctx context.Context, raw []byte) (string, error) {
	var out idAnswer
	err := c.doJSON(ctx, request{
		method: http.MethodPost, path: "/messages", body: bytes.NewReader(raw), contentType: "message/rfc822",
		context: "send raw message",
	}, &out)
	return out.id(), err
}

// Release puts a captured message on the relay queue for the given real
// recipients, or its envelope recipients when none are given
// (POST /messages/{id}/release). A sandbox without a relay answers 409.
func (c *Client) Release(ctx context.Context, id string, to ...string) error {
	body, err := jsonBody(map[string][]string{"to": to})
	if err != nil {
		return err
	}
	return c.doJSON(ctx, request{
		method: http.MethodPost, path: "/messages/" + esc(id) + "/release", body: body, contentType: "application/json",
		context: fmt.Sprintf("release message %q to %v", id, to),
	}, nil)
}

// RelayQueue lists the relay queue (GET /relay/queue).
func (c *Client) RelayQueue(ctx context.Context) ([]Delivery, error) {
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
	}
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/relay/queue", context: "list relay queue"}, &out)
	return out.Deliveries, err
}

// RetryDelivery asks the relay to try a queued delivery now
// (POST /relay/queue/{id}/retry).
func (c *Client) RetryDelivery(ctx context.Context, id string) error {
	return c.doJSON(ctx, request{
		method: http.MethodPost, path: "/relay/queue/" + esc(id) + "/retry",
		context: fmt.Sprintf("retry delivery %q", id),
	}, nil)
}

// DropDelivery removes a delivery from the relay queue
// (DELETE /relay/queue/{id}).
func (c *Client) DropDelivery(ctx context.Context, id string) error {
	return c.doJSON(ctx, request{
		method: http.MethodDelete, path: "/relay/queue/" + esc(id),
		context: fmt.Sprintf("drop delivery %q", id),
	}, nil)
}
