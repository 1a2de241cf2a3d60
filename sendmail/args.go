// Package sendmail is the sendmail(1) drop-in: it parses the command line
// as Postfix's sendmail does (getopt, clustered letters, attached or
// separate values, "--"), fixes up the message as Postfix's cleanup does
// (Date, Message-Id, From) and submits it over SMTP to a running sandbox.
// Programs that call sendmail (PHP's mail(), cron, mutt, git send-email)
// see the exit statuses of sysexits.h they expect.
package sendmail

import (
	"fmt"
	"strings"
)

// Exit statuses from sysexits.h, as callers of sendmail expect them.
const (
	exOK          = 0
	exUsage       = 64 // bad command line
	exDataErr     = 65 // the message cannot be read or parsed
	exUnavailable = 69 // refused for good (5xx), or a mode not offered
	exSoftware    = 70
	exTempFail    = 75 // try again later: sandbox unreachable, 4xx
)

// Mode is what the command was asked to do.
type Mode int

const (
	ModeDeliver    Mode = iota // read a message on stdin and submit it (-bm, the default)
	ModeMailq                  // list the queue (-bp, mailq)
	ModeNewaliases             // rebuild aliases (-bi, -I, newaliases)
	ModeSMTP                   // SMTP on stdin/stdout (-bs)
	ModeVerify                 // check recipients (-bv)
	ModeDaemon                 // run as a daemon (-bd, -bl)
	ModeFlush                  // run the queue (-q)
	ModeIgnore                 // host status (-bh, -bH): nothing to do
)

// Args is a parsed sendmail command line.
type Args struct {
	Mode Mode
	// Sender is the envelope sender from -f or -r ("<>" is the null
	// sender); SenderSet tells an empty -f "" apart from none.
	Sender    string
	SenderSet bool
	// FullName is -F: used only in a From field added to a message
	// that has none.
	FullName    string
	FullNameSet bool
	Extract     bool   // -t: recipients from To, Cc and Bcc
	IgnoreDots  bool   // -i, -oi: a line with only "." does not end the message
	Verbose     int    // -v count: one shows the SMTP dialogue on stderr
	Body        string // -B: "7BIT" or "8BITMIME"
	Notify      []string
	Return      string // -R: "FULL" or "HDRS"
	EnvID       string // -V envid
	SMTPAddr    string // --smtp-addr, -S (Mailpit's)
	QueueTime   bool   // -q<interval>: nothing to do
	FlushTarget bool   // -qR site, -qI id: nothing to do here
	Recipients  []string
	// Warnings are lines Postfix would print and carry on after.
	Warnings []string
}

// UsageError is a bad command line: exit 64 with its one line.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usage(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// withValue are the option letters that take a value, attached (-fADDR)
// or as the next argument (-f ADDR), from Postfix's getopt list; S is
// Mailpit's SMTP address.
const withValue = "ABCFLNORSVXbefhopqr"

// noValue are the letters without one.
const noValue = "GIUcimntvx"

// Parse reads a sendmail command line. name is the program's base name:
// "mailq" and "newaliases" start in those modes, as Postfix's do. As in
// Postfix (POSIX getopt), options end at the first argument that is not
// one, or after "--"; the rest are recipients.
func Parse(name string, args []string) (Args, error) {
	var a Args
	switch name {
	case "mailq":
		a.Mode = ModeMailq
	case "newaliases":
		a.Mode = ModeNewaliases
	}
	i := 0
	for i < len(args) {
		arg := args[i]
		if arg == "--" {
			i++
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			break
		}
		// Not getopt-shaped, handled before it as Postfix does.
		switch {
		case arg == "-q":
			if a.Mode != ModeDaemon {
				a.Mode = ModeFlush
			}
			i++
			continue
		case arg == "-XV":
			i++
			continue
		case arg == "-V" && i+1 < len(args) && len(args[i+1]) == 2:
			// The old VERP form: Postfix reads it as -XV, and the two
			// characters that follow as a recipient.
			a.Warnings = append(a.Warnings, "option -V is deprecated with Postfix 2.3; specify -XV instead")
			i++
			continue
		case strings.HasPrefix(arg, "-V") && len(arg) == 4:
			a.Warnings = append(a.Warnings, fmt.Sprintf("option %s is deprecated with Postfix 2.3; specify -X%s instead", arg, arg[1:]))
			if err := verp(arg[2:]); err != nil {
				return a, err
			}
			i++
			continue
		case arg == "--smtp-addr":
			if i+1 >= len(args) {
				return a, usage("option --smtp-addr needs a value (host:port)")
			}
			a.SMTPAddr = args[i+1]
			i += 2
			continue
		case strings.HasPrefix(arg, "--smtp-addr="):
			a.SMTPAddr = strings.TrimPrefix(arg, "--smtp-addr=")
			i++
			continue
		case strings.HasPrefix(arg, "--"):
			return a, usage("unknown option %s", quoteArg(arg))
		}
		i++
		// A cluster of letters: -ti, -it, -tif addr, -odb.
		for j := 1; j < len(arg); j++ {
			c := arg[j]
			switch {
			case strings.IndexByte(noValue, c) >= 0:
				if err := a.flag(c); err != nil {
					return a, err
				}
			case strings.IndexByte(withValue, c) >= 0:
				var val string
				if j+1 < len(arg) {
					val = arg[j+1:]
				} else if i < len(args) {
					// getopt takes the next argument whatever it is:
					// "-f -bp" sets the sender to "-bp".
					val = args[i]
					i++
				} else {
					return a, usage("option -%c needs a value", c)
				}
				if err := a.option(c, val); err != nil {
					return a, err
				}
				j = len(arg)
			default:
				return a, usage("unknown option -%s", quoteLetter(c))
			}
		}
	}
	a.Recipients = append(a.Recipients, args[i:]...)
	return a, a.check()
}

// flag applies a letter without a value.
func (a *Args) flag(c byte) error {
	switch c {
	case 'I':
		a.Mode = ModeNewaliases
	case 'i':
		a.IgnoreDots = true
	case 'n':
		return usage("-n option not supported")
	case 't':
		a.Extract = true
	case 'v':
		a.Verbose++
	}
	// G (gateway submission), U (initial submission), c, m, x: ignored,
	// as Postfix ignores them.
	return nil
}

// option applies a letter with its value.
func (a *Args) option(c byte, v string) error {
	switch c {
	case 'B':
		switch v {
		case "8BITMIME", "7BIT":
			a.Body = v
		default:
			return usage("-B option needs 8BITMIME or 7BIT")
		}
	case 'F':
		a.FullName, a.FullNameSet = v, true
	case 'f', 'r':
		a.Sender, a.SenderSet = v, true
	case 'N':
		n, ok := notify(v)
		if !ok {
			a.Warnings = append(a.Warnings, "bad -N option value -- ignored")
		} else {
			a.Notify = n
		}
	case 'R':
		switch strings.ToUpper(v) {
		case "FULL", "HDRS":
			a.Return = strings.ToUpper(v)
		default:
			a.Warnings = append(a.Warnings, "bad -R option value -- ignored")
		}
	case 'V':
		switch {
		case len(v) > 100:
			a.Warnings = append(a.Warnings, "too long -V option value -- ignored")
		case !printable(v):
			a.Warnings = append(a.Warnings, "bad syntax in -V option value -- ignored")
		default:
			a.EnvID = v
		}
	case 'X':
		if v == "" || v[0] != 'V' {
			return usage("unsupported: -X%s", firstChar(v))
		}
		return verp(v[1:])
	case 'b':
		switch firstChar(v) {
		case "d", "l":
			a.Mode = ModeDaemon
		case "h", "H":
			a.Mode = ModeIgnore
		case "i":
			a.Mode = ModeNewaliases
		case "m":
			a.Mode = ModeDeliver
		case "p":
			a.Mode = ModeMailq
		case "s":
			a.Mode = ModeSMTP
		case "v":
			a.Mode = ModeVerify
		default:
			return usage("unsupported: -b%s", firstChar(v))
		}
	case 'o':
		switch firstChar(v) {
		case "A":
			if len(v) == 1 {
				return usage("-oA requires pathname")
			}
		case "i":
			a.IgnoreDots = true
		}
		// -o7, -o8, -om, -oem, -odb, -oX...: ignored, as in Postfix.
	case 'q':
		switch {
		case v != "" && v[0] >= '0' && v[0] <= '9':
			a.QueueTime = true
		case v != "" && (v[0] == 'R' || v[0] == 'I'):
			if len(v) == 1 {
				if v[0] == 'R' {
					return usage("specify: -qRsitename")
				}
				return usage("specify: -qIqueueid")
			}
			a.FlushTarget = true
		default:
			return usage("-q%s is not implemented", firstChar(v))
		}
	case 'S':
		a.SMTPAddr = v
	}
	// A (-Am, -Ac), C (config), L (label), O (option=value), e, h (hop
	// count), p (protocol): accepted and ignored, as Postfix does.
	return nil
}

// check rejects the combinations Postfix rejects.
func (a *Args) check() error {
	if a.Extract && a.Mode != ModeDeliver {
		return usage("-t can be used only in delivery mode")
	}
	if a.FlushTarget && a.Mode != ModeDeliver {
		return usage("-qR and -qI can be used only in delivery mode")
	}
	if a.Mode == ModeVerify {
		switch {
		case a.Extract:
			return usage("-t option cannot be used with -bv")
		case a.Notify != nil:
			return usage("-N option cannot be used with -bv")
		case a.Return != "":
			return usage("-R option cannot be used with -bv")
		}
	}
	if len(a.Recipients) > 0 {
		switch a.Mode {
		case ModeMailq:
			return usage("display queue mode requires no recipient")
		case ModeFlush:
			return usage("flush queue mode requires no recipient")
		case ModeDaemon:
			return usage("daemon mode requires no recipient")
		case ModeNewaliases:
			return usage("alias initialization mode requires no recipient")
		case ModeSMTP:
			return usage("stand-alone mode requires no recipient")
		}
		if a.FlushTarget {
			return usage("flushing the queue requires no recipient")
		}
	}
	return nil
}

// notify parses -N: "never", or a comma-separated list of success,
// failure and delay, in any case.
func notify(v string) ([]string, bool) {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		u := strings.ToUpper(f)
		switch u {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return nil, false
		}
		for _, o := range out {
			if o == u {
				return nil, false
			}
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, false
	}
	for _, o := range out {
		if o == "NEVER" && len(out) > 1 {
			return nil, false
		}
	}
	return out, true
}

// verp checks -XV's delimiters: none (the defaults), or two of "+-=".
func verp(d string) error {
	if d == "" {
		return nil
	}
	if len(d) != 2 || !strings.ContainsRune("+-=", rune(d[0])) || !strings.ContainsRune("+-=", rune(d[1])) {
		return usage("-V requires two characters from +-=")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// firstChar is v's first byte as a printable string for messages.
func firstChar(v string) string {
	if v == "" {
		return ""
	}
	return quoteLetter(v[0])
}

func quoteLetter(c byte) string {
	if c < 0x21 || c > 0x7e {
		return fmt.Sprintf("\\x%02x", c)
	}
	return string(c)
}

// quoteArg keeps a bad argument on one line in the error.
func quoteArg(s string) string {
	if printable(s) && len(s) <= 80 {
		return s
	}
	q := fmt.Sprintf("%q", s)
	if len(q) > 80 {
		q = q[:77] + "..."
	}
	return q
}
