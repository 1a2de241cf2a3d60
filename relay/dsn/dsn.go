// Package dsn builds delivery status notifications (RFC 3464): a
// multipart/report; report-type=delivery-status message with a
// human-readable part, the machine-readable message/delivery-status part and
// the original message's header as text/rfc822-headers.
package dsn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"time"
)

// Recipient is the fate of one recipient.
type Recipient struct {
	// Address is the final recipient (an RFC 822 address).
	Address string
	// Action is "failed" (the default), "delayed", "delivered", "relayed"
	// or "expanded".
	Action string
	// Status is an RFC 3463 status code such as "5.1.1". When empty it is
	// taken from Diagnostic (its enhanced code, or its class) or, failing
	// that, "5.0.0".
	Status string
	// RemoteMTA is the host that answered, "" when unknown.
	RemoteMTA string
	// Diagnostic is the remote SMTP reply ("550 5.1.1 no such user"), or
	// any other error text when there was no reply.
	Diagnostic string
	// LastAttempt is when delivery was last tried; zero to omit.
	LastAttempt time.Time
}

// Report describes one notification.
type Report struct {
	// ReportingMTA names the host writing the report.
	ReportingMTA string
	// To is the envelope sender of the original message, who gets the
	// report.
	To string
	// Arrival is when the original message was received; zero to omit.
	Arrival time.Time
	// Date of the report; zero means now.
	Date       time.Time
	Recipients []Recipient
	// OriginalHeader is the original message's header section.
	OriginalHeader []byte
	// Reason is an optional sentence for the human-readable part.
	Reason string
}

var (
	replyRe    = regexp.MustCompile(`^([2-5][0-9][0-9])(?:[ -]|$)`)
	enhancedRe = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)
)

// StatusOf returns the RFC 3463 status for a recipient: its Status, or the
// enhanced code in its diagnostic reply, or the reply's class with ".0.0".
func (r Recipient) StatusOf() string {
	if r.Status != "" {
		return r.Status
	}
	if m := replyRe.FindStringSubmatch(r.Diagnostic); m != nil {
		fields := strings.Fields(r.Diagnostic)
		if len(fields) > 1 && enhancedRe.MatchString(fields[1]) {
			return fields[1]
		}
		return m[1][:1] + ".0.0"
	}
	return "5.0.0"
}

// diagnosticCode renders the Diagnostic-Code value: "smtp; <reply>" for an
// SMTP reply, "x-local; <text>" for other errors.
func (r Recipient) diagnosticCode() string {
	d := oneLine(r.Diagnostic)
	if d == "" {
		return ""
	}
	if replyRe.MatchString(d) {
		return "smtp; " + d
	}
	return "X-mailsandbox; " + d
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.Join(strings.Fields(s), " ")
}

// fold breaks a header field value into lines of about 78 characters.
func fold(name, value string) string {
	line := name + ": "
	var b strings.Builder
	for i, w := range strings.Fields(value) {
		if i > 0 {
			if len(line)+1+len(w) > 76 {
				b.WriteString(line + "\r\n")
				line = " " + w
				continue
			}
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

// Build renders the report as a complete message with CRLF line endings.
func Build(r Report) []byte {
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	mta := r.ReportingMTA
	if mta == "" {
		mta = "localhost"
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	boundary := "dsn-" + hex.EncodeToString(rnd[:])
	action := func(rc Recipient) string {
		if rc.Action == "" {
			return "failed"
		}
		return rc.Action
	}
	allFailed := true
	for _, rc := range r.Recipients {
		if action(rc) != "failed" {
			allFailed = false
		}
	}
	subject := "Undelivered Mail Returned to Sender"
	if !allFailed {
		subject = "Delivery Status Notification"
	}

	var b bytes.Buffer
	b.WriteString("From: Mail Delivery System <MAILER-DAEMON@" + mta + ">\r\n")
	b.WriteString("To: <" + r.To + ">\r\n")
	b.WriteString("Subject: " + subject + "\r\n")
	b.WriteString("Date: " + date.Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: <" + hex.EncodeToString(rnd[:8]) + "." + fmt.Sprint(date.UnixNano()) + "@" + mta + ">\r\n")
	b.WriteString("Auto-Submitted: auto-replied\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"" + boundary + "\"\r\n")
	b.WriteString("\r\n")
	b.WriteString("This is a MIME-encapsulated delivery status notification.\r\n")

	// Human-readable part.
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Description: Notification\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	var human strings.Builder
	fmt.Fprintf(&human, "This is the mail system at host %s.\r\n\r\n", mta)
	if allFailed {
		human.WriteString("Your message could not be delivered to one or more recipients.\r\nIt is attached below (its header only).\r\n")
	} else {
		human.WriteString("This is a report about the delivery of your message.\r\n")
	}
	if r.Reason != "" {
		human.WriteString("\r\n" + r.Reason + "\r\n")
	}
	human.WriteString("\r\n")
	for _, rc := range r.Recipients {
		fmt.Fprintf(&human, "<%s>: %s (%s)\r\n", rc.Address, action(rc), rc.StatusOf())
		if d := oneLine(rc.Diagnostic); d != "" {
			if rc.RemoteMTA != "" {
				fmt.Fprintf(&human, "    %s said: %s\r\n", rc.RemoteMTA, d)
			} else {
				fmt.Fprintf(&human, "    %s\r\n", d)
			}
		}
	}
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(human.String()))
	_ = qp.Close()

	// Machine-readable part.
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n")
	b.WriteString("Reporting-MTA: dns; " + mta + "\r\n")
	if !r.Arrival.IsZero() {
		b.WriteString("Arrival-Date: " + r.Arrival.Format(time.RFC1123Z) + "\r\n")
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		b.WriteString("Final-Recipient: rfc822; " + rc.Address + "\r\n")
		b.WriteString("Action: " + action(rc) + "\r\n")
		b.WriteString("Status: " + rc.StatusOf() + "\r\n")
		if rc.RemoteMTA != "" {
			b.WriteString("Remote-MTA: dns; " + rc.RemoteMTA + "\r\n")
		}
		if d := rc.diagnosticCode(); d != "" {
			b.WriteString(fold("Diagnostic-Code", d))
		}
		if !rc.LastAttempt.IsZero() {
			b.WriteString("Last-Attempt-Date: " + rc.LastAttempt.Format(time.RFC1123Z) + "\r\n")
		}
	}

	// The original header.
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered message headers\r\n\r\n")
	h := bytes.TrimRight(r.OriginalHeader, "\r\n")
	h = bytes.ReplaceAll(bytes.ReplaceAll(h, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	b.Write(h)
	b.WriteString("\r\n")
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes()
}

// Header returns the header section of a raw message (up to and excluding
// the blank line).
func Header(raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return raw
		}
		if len(bytes.TrimRight(raw[i:i+j+1], "\r\n")) == 0 {
			return raw[:i]
		}
		i += j + 1
	}
	return raw
}
