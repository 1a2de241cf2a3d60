package pop3d

import (
	"errors"
	"strconv"
	"strings"
)

// phase is a POP3 session state (RFC 1939 section 3). UPDATE is not a
// phase commands can run in: it is the work QUIT does on the way out.
type phase uint8

const (
	phaseAuth  phase = 1 << iota // AUTHORIZATION
	phaseTrans                   // TRANSACTION
)

// argKind says how one argument is read.
type argKind uint8

const (
	argWord argKind = iota // a run of non-space characters
	argNum                 // a decimal number, as used for message numbers and line counts
	argRest                // the rest of the line, spaces included (PASS)
)

// maxNumLen bounds a number argument so that it always fits an int; word
// arguments are bounded only by the line limit (AUTH initial responses can
// be long).
const maxNumLen = 9

// spec describes one command: when it is valid and what it takes.
type spec struct {
	phases phase
	args   []argKind
	min    int // required arguments; the rest are optional
}

// commands is the command table. Parsing only checks the shape of a line;
// the session checks the phase and runs the handler of the same name.
var commands = map[string]spec{
	"CAPA": {phases: phaseAuth | phaseTrans},
	"QUIT": {phases: phaseAuth | phaseTrans},
	"USER": {phases: phaseAuth, args: []argKind{argWord}, min: 1},
	"PASS": {phases: phaseAuth, args: []argKind{argRest}},
	"AUTH": {phases: phaseAuth, args: []argKind{argWord, argWord}},
	"STLS": {phases: phaseAuth},
	"STAT": {phases: phaseTrans},
	"LIST": {phases: phaseTrans, args: []argKind{argNum}},
	"UIDL": {phases: phaseTrans, args: []argKind{argNum}},
	"RETR": {phases: phaseTrans, args: []argKind{argNum}, min: 1},
	"TOP":  {phases: phaseTrans, args: []argKind{argNum, argNum}, min: 2},
	"DELE": {phases: phaseTrans, args: []argKind{argNum}, min: 1},
	"RSET": {phases: phaseTrans},
	"NOOP": {phases: phaseTrans},
}

// command is one parsed command line.
type command struct {
	verb string   // upper case, a key of commands
	args []string // as sent (numbers validated)
	nums []int    // args parsed as numbers, 0 for non-numbers
}

// Parse errors; each is answered with -ERR and counts as a bad command.
var (
	errEmpty   = errors.New("empty command")
	errUnknown = errors.New("unknown command")
	errSyntax  = errors.New("syntax error")
)

// parseCommand parses one command line without its line ending. Keywords
// are case-insensitive; arguments are separated by spaces (runs of spaces
// are tolerated), except the argument of PASS, which is the whole rest of
// the line after one space so that passwords may contain spaces.
func parseCommand(line string) (command, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return command{}, errEmpty
	}
	verb, rest, spaced := strings.Cut(line, " ")
	if len(verb) < 3 || len(verb) > 4 || !isAlpha(verb) {
		return command{}, errUnknown
	}
	verb = strings.ToUpper(verb)
	sp, ok := commands[verb]
	if !ok {
		return command{}, errUnknown
	}
	cmd := command{verb: verb}
	for i, kind := range sp.args {
		if kind == argRest {
			if spaced {
				cmd.args = append(cmd.args, rest)
				cmd.nums = append(cmd.nums, 0)
			}
			rest = ""
			break
		}
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			if i < sp.min {
				return command{}, errSyntax
			}
			break
		}
		var arg string
		arg, rest, _ = strings.Cut(rest, " ")
		n := 0
		if kind == argNum {
			v, ok := parseNum(arg)
			if !ok {
				return command{}, errSyntax
			}
			n = v
		}
		cmd.args = append(cmd.args, arg)
		cmd.nums = append(cmd.nums, n)
	}
	if strings.TrimLeft(rest, " ") != "" {
		return command{}, errSyntax
	}
	if len(cmd.args) < sp.min {
		return command{}, errSyntax
	}
	return cmd, nil
}

func parseNum(s string) (int, bool) {
	if s == "" || len(s) > maxNumLen {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
