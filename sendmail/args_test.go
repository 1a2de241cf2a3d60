package sendmail

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseAsPostfix: the command lines real callers use, and the forms
// Postfix's getopt allows, give the same result as Postfix's sendmail.
func TestParseAsPostfix(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want Args
	}{
		{"php default", []string{"-t", "-i"}, Args{Extract: true, IgnoreDots: true}},
		{"php fifth argument", []string{"-t", "-i", "-fbounce@example.org"}, Args{Extract: true, IgnoreDots: true, Sender: "bounce@example.org", SenderSet: true}},
		{"clustered -ti", []string{"-ti"}, Args{Extract: true, IgnoreDots: true}},
		{"clustered -it with value", []string{"-itf", "a@b"}, Args{Extract: true, IgnoreDots: true, Sender: "a@b", SenderSet: true}},
		{"neomutt default", []string{"-oem", "-oi", "--", "bob@example.com"}, Args{IgnoreDots: true, Recipients: []string{"bob@example.com"}}},
		{"-r separate", []string{"-r", "a@b", "x@y"}, Args{Sender: "a@b", SenderSet: true, Recipients: []string{"x@y"}}},
		{"-F attached", []string{"-FCron Daemon", "root"}, Args{FullName: "Cron Daemon", FullNameSet: true, Recipients: []string{"root"}}},
		{"cron", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"}, Args{FullName: "CronDaemon", FullNameSet: true, IgnoreDots: true, Body: "8BITMIME", Recipients: []string{"root"}}},
		{"-N separate", []string{"-N", "never", "x@y"}, Args{Notify: []string{"NEVER"}, Recipients: []string{"x@y"}}},
		{"-N list", []string{"-Nsuccess,delay", "x@y"}, Args{Notify: []string{"SUCCESS", "DELAY"}, Recipients: []string{"x@y"}}},
		{"-R -V", []string{"-R", "hdrs", "-V", "env-1", "x@y"}, Args{Return: "HDRS", EnvID: "env-1", Recipients: []string{"x@y"}}},
		{"-odb -v -bm", []string{"-odb", "-v", "-bm", "x@y"}, Args{Verbose: 1, Recipients: []string{"x@y"}}},
		{"ignored letters", []string{"-G", "-U", "-m", "-c", "-x", "-Am", "-C", "/etc/x", "-L", "lbl", "-O", "a=b", "-h", "5", "-pSMTP", "-o7", "-o8", "-om", "-oAhash:/a", "x@y"}, Args{Recipients: []string{"x@y"}}},
		{"value looks like an option", []string{"-f", "-bp", "x@y"}, Args{Sender: "-bp", SenderSet: true, Recipients: []string{"x@y"}}},
		{"options end at the first recipient", []string{"x@y", "-t"}, Args{Recipients: []string{"x@y", "-t"}}},
		{"-- ends options", []string{"-i", "--", "-odd@y"}, Args{IgnoreDots: true, Recipients: []string{"-odd@y"}}},
		{"Mailpit -S", []string{"-S", "127.0.0.1:1", "x@y"}, Args{SMTPAddr: "127.0.0.1:1", Recipients: []string{"x@y"}}},
		{"Mailpit -S attached", []string{"-S127.0.0.1:2", "-t"}, Args{SMTPAddr: "127.0.0.1:2", Extract: true}},
		{"--smtp-addr", []string{"--smtp-addr", "h:1", "--smtp-addr=h:2", "x@y"}, Args{SMTPAddr: "h:2", Recipients: []string{"x@y"}}},
		{"-bs", []string{"-bs"}, Args{Mode: ModeSMTP}},
		{"-bp", []string{"-bp"}, Args{Mode: ModeMailq}},
		{"-I", []string{"-I"}, Args{Mode: ModeNewaliases}},
		{"-bi", []string{"-bi"}, Args{Mode: ModeNewaliases}},
		{"-bd", []string{"-bd"}, Args{Mode: ModeDaemon}},
		{"-bh", []string{"-bH"}, Args{Mode: ModeIgnore}},
		{"-bv", []string{"-bv", "x@y"}, Args{Mode: ModeVerify, Recipients: []string{"x@y"}}},
		{"-q", []string{"-q"}, Args{Mode: ModeFlush}},
		{"-q30m", []string{"-q30m"}, Args{QueueTime: true}},
		{"-qRsite", []string{"-qRexample.com"}, Args{FlushTarget: true}},
		{"-XV", []string{"-XV", "x@y"}, Args{Recipients: []string{"x@y"}}},
		{"-XV+=", []string{"-XV+=", "x@y"}, Args{Recipients: []string{"x@y"}}},
		{"empty sender", []string{"-f", "", "x@y"}, Args{SenderSet: true, Recipients: []string{"x@y"}}},
		{"lone dash is a recipient", []string{"-", "x"}, Args{Recipients: []string{"-", "x"}}},
	}
	for _, c := range cases {
		got, err := Parse("sendmail", c.args)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got.Warnings = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v\n got %+v\nwant %+v", c.name, c.args, got, c.want)
		}
	}
}

// TestParseRefuses: what Postfix refuses is a usage error (exit 64) with
// one line naming the problem; bad -N/-R/-V values are warnings.
func TestParseRefuses(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-Q"}, "unknown option -Q"},
		{[]string{"-tQ"}, "unknown option -Q"},
		{[]string{"--from", "a"}, "unknown option --from"},
		{[]string{"-f"}, "option -f needs a value"},
		{[]string{"-t", "-F"}, "option -F needs a value"},
		{[]string{"--smtp-addr"}, "option --smtp-addr needs a value"},
		{[]string{"-S"}, "option -S needs a value"},
		{[]string{"-n"}, "-n option not supported"},
		{[]string{"-X", "/tmp/log"}, "unsupported: -X/"},
		{[]string{"-bz"}, "unsupported: -bz"},
		{[]string{"-qS"}, "-qS is not implemented"},
		{[]string{"-qR"}, "specify: -qRsitename"},
		{[]string{"-B", "9BIT"}, "-B option needs 8BITMIME or 7BIT"},
		{[]string{"-oA"}, "-oA requires pathname"},
		{[]string{"-t", "-bp"}, "-t can be used only in delivery mode"},
		{[]string{"-bp", "x@y"}, "display queue mode requires no recipient"},
		{[]string{"-bs", "x@y"}, "stand-alone mode requires no recipient"},
		{[]string{"-bv", "-N", "never", "x"}, "-N option cannot be used with -bv"},
		{[]string{"-XVab"}, "-V requires two characters"},
		{[]string{"-\x01"}, `unknown option -\x01`},
	}
	for _, c := range cases {
		_, err := Parse("sendmail", c.args)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.HasPrefix(ue.Msg, c.want) || strings.Contains(ue.Msg, "\n") {
			t.Errorf("%q: error %v, want a usage error starting %q", c.args, err, c.want)
		}
	}
	for _, args := range [][]string{{"-N", "sometimes", "x"}, {"-R", "most", "x"}, {"-V", strings.Repeat("v", 101), "x"}} {
		a, err := Parse("sendmail", args)
		if err != nil || len(a.Warnings) != 1 || a.Notify != nil || a.Return != "" || a.EnvID != "" {
			t.Errorf("%q: %+v %v, want one warning and the value ignored", args, a, err)
		}
	}
}

func TestParseByName(t *testing.T) {
	if a, err := Parse("mailq", nil); err != nil || a.Mode != ModeMailq {
		t.Errorf("mailq: %+v %v", a, err)
	}
	if a, err := Parse("newaliases", nil); err != nil || a.Mode != ModeNewaliases {
		t.Errorf("newaliases: %+v %v", a, err)
	}
	// "newaliases -bp" shows the queue, as in Postfix.
	if a, err := Parse("newaliases", []string{"-bp"}); err != nil || a.Mode != ModeMailq {
		t.Errorf("newaliases -bp: %+v %v", a, err)
	}
}

// FuzzParse: any command line gives a result or a one-line usage error,
// never a panic, and recipients are always a tail of the arguments.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"-t -i", "-ti -fa@b", "-oem -oi -- x", "-f", "-V ab", "-Vab", "-XV", "-q", "-qR", "-S h:1 -bs", "--smtp-addr=h", "-FName -N never x", "-X /x", "-\x00", "- x", "-- -t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		a, err := Parse("sendmail", args)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) || strings.Contains(ue.Msg, "\n") || ue.Msg == "" {
				t.Fatalf("%q: error %v", args, err)
			}
			return
		}
		if n := len(a.Recipients); n > len(args) || !reflect.DeepEqual(a.Recipients, args[len(args)-n:]) && n > 0 {
			t.Fatalf("%q: recipients %q are not a tail of the arguments", args, a.Recipients)
		}
	})
}
