package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultWaitTimeout bounds [Client.Wait] and [Client.WaitN] when the
	// context has no deadline, so a test that forgot one fails with a clear
	// message instead of hanging until the test binary's timeout.
	DefaultWaitTimeout = 10 * time.Second

	// maxWaitRequest caps one long-poll request; longer waits are made of
	// several requests.
	maxWaitRequest = 30 * time.Second
)

// Wait blocks until a message matching f exists and returns it in full
// (GET /messages/wait). Without f.Since a message already stored counts;
// with it, only mail received at or after f.Since. When several match, the
// newest is returned.
//
// The wait ends with ctx (or after [DefaultWaitTimeout] when ctx has no
// deadline). The error then says what was looked for and lists the newest
// messages the sandbox does hold, and matches context.DeadlineExceeded with
// errors.Is.
func (c *Client) Wait(ctx context.Context, f Filter) (*Message, error) {
	msgs, err := c.WaitN(ctx, f, 1)
	if err != nil {
		return nil, err
	}
	return msgs[0], nil
}

// WaitN blocks until at least n messages match f and returns n of them in
// full, newest first. See [Client.Wait].
func (c *Client) WaitN(ctx context.Context, f Filter, n int) ([]*Message, error) {
	if n < 1 {
		n = 1
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWaitTimeout)
		defer cancel()
	}
	start := time.Now()
	sums, err := c.waitSummaries(ctx, f, n)
	if err != nil {
		return nil, c.waitError(ctx, f, n, time.Since(start), err)
	}
	if len(sums) > n {
		sums = sums[:n]
	}
	out := make([]*Message, 0, len(sums))
	for _, s := range sums {
		m, err := c.Get(ctx, s.ID)
		if err != nil {
			return nil, fmt.Errorf("sdk: wait for %s: %w", f, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// waitSummaries long-polls /messages/wait until n matches exist, repeating
// the request while the server times out (408) and ctx is still alive.
func (c *Client) waitSummaries(ctx context.Context, f Filter, n int) ([]Summary, error) {
	q := f.values()
	// Paging is for Search: the server takes count instead, and refuses
	// limit and offset on a wait.
	q.Del("limit")
	q.Del("offset")
	q.Del("total")
	q.Set("count", strconv.Itoa(n))
	for {
		d := maxWaitRequest
		if dl, ok := ctx.Deadline(); ok {
			rem := time.Until(dl)
			// Ask the server to give up a little before our deadline so a
			// clean 408 usually wins the race against ctx cancellation.
			rem -= min(rem/10, 250*time.Millisecond)
			d = min(d, rem)
		}
		if d < time.Millisecond {
			d = time.Millisecond
		}
		q.Set("timeout", d.Round(time.Millisecond).String())
		var out struct {
			Messages []Summary `json:"messages"`
		}
		err := c.doJSON(ctx, request{method: http.MethodGet, path: "/messages/wait", query: q, context: "wait for " + f.String()}, &out)
		if err == nil {
			if len(out.Messages) >= n {
				return out.Messages, nil
			}
			// A server that answers early with fewer matches: ask again.
			continue
		}
		if StatusCode(err) == http.StatusRequestTimeout && ctx.Err() == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

// waitError explains a failed wait: what was looked for, for how long, and
// what the sandbox holds instead.
func (c *Client) waitError(ctx context.Context, f Filter, n int, waited time.Duration, err error) error {
	if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
		return err
	}
	var b strings.Builder
	if n == 1 {
		fmt.Fprintf(&b, "sdk: no message matching %s after %s", f, waited.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "sdk: fewer than %d messages matching %s after %s", n, f, waited.Round(time.Millisecond))
	}
	// Look around with a short, fresh context: the caller's is done.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if n > 1 {
		if got, serr := c.Search(dctx, Filter{To: f.To, From: f.From, Subject: f.Subject, Text: f.Text, Mailbox: f.Mailbox, Since: f.Since, Before: f.Before, Limit: 1}); serr == nil {
			fmt.Fprintf(&b, " (%d of %d found)", got.Total, n)
		}
	}
	if all, serr := c.Search(dctx, Filter{Limit: 5}); serr == nil {
		if all.Total == 0 {
			b.WriteString("; the sandbox holds no messages")
		} else {
			fmt.Fprintf(&b, "; the sandbox holds %d message(s), newest:", all.Total)
			for _, s := range all.Messages {
				fmt.Fprintf(&b, "\n\t%s", describe(s))
			}
		}
	}
	return &waitErr{msg: b.String(), err: err}
}

type waitErr struct {
	msg string
	err error
}

func (e *waitErr) Error() string { return e.msg }
func (e *waitErr) Unwrap() error { return e.err }

// describe formats a summary on one line for error messages.
func describe(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", s.ID, s.Subject)
	if s.From.Address != "" {
		fmt.Fprintf(&b, " from %s", s.From.Address)
	}
	to := make([]string, 0, len(s.To))
	for _, a := range s.To {
		to = append(to, a.Address)
	}
	if len(to) > 0 {
		fmt.Fprintf(&b, " to %s", strings.Join(to, ","))
	}
	if len(s.Mailboxes) > 0 {
		fmt.Fprintf(&b, " in %s", strings.Join(s.Mailboxes, ","))
	}
	if !s.ReceivedAt.IsZero() {
		fmt.Fprintf(&b, " received %s", s.ReceivedAt.Format(time.RFC3339))
	}
	return b.String()
}
