package smtpd

import "github.com/emersion/go-smtp"

// Replies for the Mailpit-compatible policies, worded as Mailpit words
// them, so clients and tests written against it see the same lines.
var (
	errNeedSTARTTLS = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Must issue a STARTTLS command first"}
	errRecipientNotAllowed = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 0},
		Message: "Requested action not taken: mailbox unavailable"}
)

// requireTLS refuses a transaction on a plain connection when
// Options.RequireTLS is set; implicit-TLS connections count as TLS.
func (se *session) requireTLS() *smtp.SMTPError {
	if !se.s.opts.RequireTLS {
		return nil
	}
	if _, isTLS := se.conn.TLSConnectionState(); isTLS {
		return nil
	}
	return errNeedSTARTTLS
}

// allowedRecipient refuses an address Options.AllowedRecipients does not
// match.
func (se *session) allowedRecipient(to string) *smtp.SMTPError {
	if re := se.s.opts.AllowedRecipients; re != nil && !re.MatchString(to) {
		return errRecipientNotAllowed
	}
	return nil
}
