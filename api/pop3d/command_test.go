package pop3d

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		verb string
		args []string
		nums []int
		err  error
	}{
		{line: "STAT", verb: "STAT"},
		{line: "stat", verb: "STAT"},
		{line: "StAt\r\n", verb: "STAT"},
		{line: "LIST", verb: "LIST"},
		{line: "LIST 3", verb: "LIST", args: []string{"3"}, nums: []int{3}},
		{line: "LIST  3 ", verb: "LIST", args: []string{"3"}, nums: []int{3}},
		{line: "LIST 007", verb: "LIST", args: []string{"007"}, nums: []int{7}},
		{line: "TOP 1 0", verb: "TOP", args: []string{"1", "0"}, nums: []int{1, 0}},
		{line: "USER Bob@Example.com", verb: "USER", args: []string{"Bob@Example.com"}, nums: []int{0}},
		{line: "PASS", verb: "PASS"},
		{line: "PASS ", verb: "PASS", args: []string{""}, nums: []int{0}},
		{line: "PASS a b  c ", verb: "PASS", args: []string{"a b  c "}, nums: []int{0}},
		{line: "AUTH", verb: "AUTH"},
		{line: "AUTH PLAIN", verb: "AUTH", args: []string{"PLAIN"}, nums: []int{0}},
		{line: "AUTH PLAIN AGJvYgB4", verb: "AUTH", args: []string{"PLAIN", "AGJvYgB4"}, nums: []int{0, 0}},
		{line: "", err: errEmpty},
		{line: "   ", err: errEmpty},
		{line: "\r\n", err: errEmpty},
		{line: "FOO", err: errUnknown},
		{line: "ST", err: errUnknown},
		{line: "STATS", err: errUnknown},
		{line: "APOP bob digest", err: errUnknown},
		{line: " STAT", err: errUnknown},
		{line: "ST\x00T", err: errUnknown},
		{line: "STAT 1", err: errSyntax},
		{line: "LIST x", err: errSyntax},
		{line: "LIST -1", err: errSyntax},
		{line: "LIST +1", err: errSyntax},
		{line: "LIST 1234567890", err: errSyntax},
		{line: "LIST 1 2", err: errSyntax},
		{line: "RETR", err: errSyntax},
		{line: "TOP 1", err: errSyntax},
		{line: "TOP 1 x", err: errSyntax},
		{line: "USER", err: errSyntax},
		{line: "USER ", err: errSyntax},
		{line: "USER a b", err: errSyntax},
		{line: "AUTH a b c", err: errSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmd, err := parseCommand(tt.line)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if cmd.verb != tt.verb || strings.Join(cmd.args, "|") != strings.Join(tt.args, "|") || len(cmd.args) != len(tt.args) {
				t.Fatalf("got %q %q, want %q %q", cmd.verb, cmd.args, tt.verb, tt.args)
			}
			for i := range tt.nums {
				if cmd.nums[i] != tt.nums[i] {
					t.Fatalf("nums = %v, want %v", cmd.nums, tt.nums)
				}
			}
		})
	}
}

// Every verb in the table has a handler and vice versa.
func TestCommandTableMatchesHandlers(t *testing.T) {
	for verb := range commands {
		if handlers[verb] == nil {
			t.Errorf("%s has no handler", verb)
		}
	}
	for verb := range handlers {
		if _, ok := commands[verb]; !ok {
			t.Errorf("%s has no command spec", verb)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"STAT", "LIST 1", "TOP 1 10", "USER bob@example.com", "PASS secret with spaces",
		"AUTH PLAIN AGJvYgB4", "RETR 99999", "uidl", "NOOP", "QUIT", "CAPA", "STLS",
		"", " ", "LIST -1", "TOP 1 1 1", "\x00", "USER  a", "PASS",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			if !errors.Is(err, errEmpty) && !errors.Is(err, errUnknown) && !errors.Is(err, errSyntax) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		sp, ok := commands[cmd.verb]
		if !ok {
			t.Fatalf("verb %q not in table", cmd.verb)
		}
		if len(cmd.args) < sp.min || len(cmd.args) > len(sp.args) || len(cmd.nums) != len(cmd.args) {
			t.Fatalf("%q: %d args for %s (min %d, max %d), %d nums", line, len(cmd.args), cmd.verb, sp.min, len(sp.args), len(cmd.nums))
		}
		for i, a := range cmd.args {
			switch sp.args[i] {
			case argNum:
				if cmd.nums[i] < 0 || a == "" || strings.Trim(a, "0123456789") != "" {
					t.Fatalf("%q: bad number %q -> %d", line, a, cmd.nums[i])
				}
			case argWord:
				if a == "" || strings.Contains(a, " ") {
					t.Fatalf("%q: bad word %q", line, a)
				}
			}
		}
		// Formatting the command again parses to the same thing.
		again := cmd.verb
		if len(cmd.args) > 0 {
			again += " " + strings.Join(cmd.args, " ")
		}
		cmd2, err := parseCommand(again)
		if err != nil || cmd2.verb != cmd.verb || strings.Join(cmd2.args, "\x00") != strings.Join(cmd.args, "\x00") {
			t.Fatalf("%q -> %q -> %+v, %v", line, again, cmd2, err)
		}
	})
}

func TestWriteMessage(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		bodyLines int
		want      string
	}{
		{"crlf kept", "A: 1\r\n\r\nbody\r\n", -1, "A: 1\r\n\r\nbody\r\n"},
		{"bare lf", "A: 1\n\nbody\n", -1, "A: 1\r\n\r\nbody\r\n"},
		{"no final newline", "A: 1\r\n\r\nbody", -1, "A: 1\r\n\r\nbody\r\n"},
		{"final bare cr", "A: 1\r\n\r\nbody\r", -1, "A: 1\r\n\r\nbody\r\n"},
		{"inner cr kept", "A: 1\r\n\r\na\rb\r\n", -1, "A: 1\r\n\r\na\rb\r\n"},
		{"dots stuffed", "A: 1\r\n\r\n.\r\n..x\r\n.y\r\nz.\r\n", -1, "A: 1\r\n\r\n..\r\n...x\r\n..y\r\nz.\r\n"},
		{"dot header stuffed", ".A: 1\r\n\r\n", -1, "..A: 1\r\n\r\n"},
		{"empty", "", -1, ""},
		{"top 0", "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 0, "A: 1\r\nB: 2\r\n\r\n"},
		{"top 1", "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n"},
		{"top past end", "A: 1\r\n\r\nl1\r\n", 5, "A: 1\r\n\r\nl1\r\n"},
		{"top blank body lines count", "A: 1\r\n\r\n\r\n\r\nl3\r\n", 2, "A: 1\r\n\r\n\r\n\r\n"},
		{"top no body", "A: 1\r\nB: 2", 0, "A: 1\r\nB: 2\r\n"},
		{"top stuffs", "A: 1\r\n\r\n.x\r\n", 1, "A: 1\r\n\r\n..x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			n, err := writeMessage(&b, []byte(tt.raw), tt.bodyLines, true)
			if err != nil || b.String() != tt.want || n != int64(b.Len()) {
				t.Fatalf("got %q (%d), %v; want %q", b.String(), n, err, tt.want)
			}
			if tt.bodyLines < 0 {
				unstuffed := strings.ReplaceAll("\r\n"+tt.want, "\r\n.", "\r\n")[2:]
				if got := messageSize([]byte(tt.raw)); got != int64(len(unstuffed)) && tt.want != "" {
					t.Fatalf("size %d, want %d", got, len(unstuffed))
				}
			}
		})
	}
}

func BenchmarkWriteMessage(b *testing.B) {
	var raw bytes.Buffer
	raw.WriteString("From: a@example.com\r\nSubject: bench\r\n\r\n")
	for raw.Len() < 1<<20 {
		raw.WriteString(".a line of about seventy characters that starts with a dot, mostly\r\n")
	}
	b.SetBytes(int64(raw.Len()))
	for b.Loop() {
		writeMessage(io.Discard, raw.Bytes(), -1, true)
	}
}
