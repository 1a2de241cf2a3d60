// Package spamcheck scores a message with SpamAssassin through spamd, over
// the spamc protocol (SPAMC/1.5, the REPORT command): the score, the
// verdict and the rules hit with their descriptions.
//
// A check never fails as a call: spamd down, slow or answering nonsense is
// reported in Result.Error, so the message itself is always served.
package spamcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultMaxBytes = 2 << 20
	// maxReplyBytes bounds what is read back from spamd.
	maxReplyBytes = 1 << 20
)

// Options configure a Client.
type Options struct {
	// Addr is spamd's host:port (spamd listens on 783 by default).
	Addr string
	// Timeout bounds one check, connection included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBytes is the largest message sent; larger ones get an error
	// (as spamc skips them). 0 means DefaultMaxBytes.
	MaxBytes int
	// Dial connects to spamd; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client talks to one spamd.
type Client struct {
	opts Options
}

// New returns a client for opts.Addr.
func New(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Dial == nil {
		d := &net.Dialer{}
		opts.Dial = d.DialContext
	}
	return &Client{opts: opts}
}

// Rule is a SpamAssassin rule the message hit.
type Rule struct {
	Name        string  `json:"name"`
	Score       float64 `json:"score"`
	Description string  `json:"description"`
}

// Result is spamd's verdict, or Error when there is none.
type Result struct {
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	IsSpam    bool    `json:"is_spam"`
	Rules     []Rule  `json:"rules"`
	Error     string  `json:"error,omitempty"`
}

// Check asks spamd for a report on raw.
func (c *Client) Check(ctx context.Context, raw []byte) *Result {
	r, err := c.check(ctx, raw)
	if err != nil {
		return &Result{Rules: []Rule{}, Error: err.Error()}
	}
	return r
}

func (c *Client) check(ctx context.Context, raw []byte) (*Result, error) {
	if len(raw) > c.opts.MaxBytes {
		return nil, fmt.Errorf("spamcheck: message is %d bytes, over the %d sent to spamd", len(raw), c.opts.MaxBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	conn, err := c.opts.Dial(ctx, "tcp", c.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("spamcheck: connect to spamd at %s: %w", c.opts.Addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// Closing the connection unblocks reads and writes if ctx ends first.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "REPORT SPAMC/1.5\r\nContent-length: %d\r\n\r\n", len(raw))
	w.Write(raw)
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("spamcheck: send to spamd: %w", ctxErr(ctx, err))
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	res, err := parseReply(bufio.NewReader(io.LimitReader(conn, maxReplyBytes)))
	if err != nil {
		return nil, fmt.Errorf("spamcheck: read spamd's reply: %w", ctxErr(ctx, err))
	}
	return res, nil
}

// ctxErr names a timeout as such: the connection's deadline (set to the
// context's) may fire a moment before the context itself ends.
func ctxErr(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

// spamHeader matches "Spam: True ; 15.0 / 5.0".
var spamHeader = regexp.MustCompile(`(?i)^(true|false|yes|no)\s*;\s*(-?[0-9.]+)\s*/\s*(-?[0-9.]+)`)

// ruleLine matches a report table row: " 2.0 HTML_IMAGE_ONLY_16     BODY: …".
var ruleLine = regexp.MustCompile(`^\s*(-?[0-9]+(?:\.[0-9]+)?)\s+([A-Za-z0-9_.]+)\s*(.*)$`)

// parseReply reads "SPAMD/1.1 0 EX_OK", headers, a blank line and the
// report.
func parseReply(r *bufio.Reader) (*Result, error) {
	status, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	f := strings.Fields(status)
	if len(f) < 2 || !strings.HasPrefix(f[0], "SPAMD/") {
		return nil, fmt.Errorf("not a spamd reply: %q", strings.TrimSpace(status))
	}
	if f[1] != "0" {
		return nil, fmt.Errorf("spamd: %s", strings.TrimSpace(strings.Join(f[1:], " ")))
	}
	res := &Result{Rules: []Rule{}}
	gotSpam := false
	for {
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return nil, errors.New("reply ended in the headers")
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		if strings.EqualFold(strings.TrimSpace(k), "Spam") {
			m := spamHeader.FindStringSubmatch(strings.TrimSpace(v))
			if m == nil {
				return nil, fmt.Errorf("bad Spam header %q", line)
			}
			res.IsSpam = strings.EqualFold(m[1], "true") || strings.EqualFold(m[1], "yes")
			res.Score, _ = strconv.ParseFloat(m[2], 64)
			res.Threshold, _ = strconv.ParseFloat(m[3], 64)
			gotSpam = true
		}
	}
	if !gotSpam {
		return nil, errors.New("reply has no Spam header")
	}
	inTable := false
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "---- "):
			inTable = true
		case inTable && strings.TrimSpace(line) == "":
			inTable = false
		case inTable:
			if m := ruleLine.FindStringSubmatch(line); m != nil {
				score, _ := strconv.ParseFloat(m[1], 64)
				res.Rules = append(res.Rules, Rule{Name: m[2], Score: score, Description: strings.TrimSpace(m[3])})
			} else if n := len(res.Rules); n > 0 {
				// A wrapped description continues on an indented line.
				res.Rules[n-1].Description = strings.TrimSpace(res.Rules[n-1].Description + " " + strings.TrimSpace(line))
			}
		}
		if err != nil {
			break
		}
	}
	return res, nil
}
