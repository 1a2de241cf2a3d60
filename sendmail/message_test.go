package sendmail

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadMessageDots(t *testing.T) {
	in := "From someone Sat Dec  5 00:00:00 2026\nSubject: x\n\nline\n.\nafter\n"
	got, err := readMessage(strings.NewReader(in), false, 0)
	if err != nil || string(got) != "Subject: x\r\n\r\nline\r\n" {
		t.Fatalf("without -i: %q %v", got, err)
	}
	got, err = readMessage(strings.NewReader(in), true, 0)
	if err != nil || string(got) != "Subject: x\r\n\r\nline\r\n.\r\nafter\r\n" {
		t.Fatalf("with -i: %q %v", got, err)
	}
	// CRLF input stays CRLF; a last line without an end keeps none.
	got, _ = readMessage(strings.NewReader("A: b\r\n\r\nx\r\ny"), true, 0)
	if string(got) != "A: b\r\n\r\nx\r\ny" {
		t.Fatalf("crlf: %q", got)
	}
	// ". " is not the end; a long line survives whole.
	long := strings.Repeat("z", 200000)
	got, _ = readMessage(strings.NewReader("A: b\n\n. \n"+long+"\n"), false, 0)
	if string(got) != "A: b\r\n\r\n. \r\n"+long+"\r\n" {
		t.Fatalf("long line: %d bytes", len(got))
	}
	if _, err := readMessage(strings.NewReader(long), true, 1000); !errors.Is(err, errTooBig) {
		t.Fatalf("limit: %v", err)
	}
}

// TestFixupPostfixForms: a message without Message-Id, Date and From gets
// them in Postfix's forms; one that has them keeps its own; -t drops Bcc.
func TestFixupPostfixForms(t *testing.T) {
	now := time.Date(2026, 12, 5, 6, 1, 2, 0, time.FixedZone("CET", 3600))
	raw := []byte("Subject: hi\r\nTo: a@x\r\nBcc: secret@x,\r\n other@x\r\n\r\nbody\r\n")
	h := splitHeader(raw)
	got := string(fixup{now: now, hostname: "host.example", sender: "app@x", fullName: "Cron Daemon", dropBcc: true}.apply(raw, h))
	lines := strings.Split(got, "\r\n")
	if lines[0] != "Subject: hi" || lines[1] != "To: a@x" {
		t.Fatalf("kept fields: %q", got)
	}
	if !strings.HasPrefix(lines[2], "Message-Id: <20261205060102.") || !strings.HasSuffix(lines[2], "@host.example>") || len(lines[2]) != len("Message-Id: <20261205060102.0123456789@host.example>") {
		t.Errorf("Message-Id: %q", lines[2])
	}
	if lines[3] != "Date: Sat,  5 Dec 2026 06:01:02 +0100 (CET)" {
		t.Errorf("Date: %q", lines[3])
	}
	if lines[4] != "From: Cron Daemon <app@x>" || lines[5] != "" || lines[6] != "body" || strings.Contains(got, "secret") {
		t.Errorf("rest: %q", got)
	}
	own := []byte("Message-ID: <mine@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: me@x\r\n\r\nb")
	if got := (fixup{now: now, hostname: "h", sender: "s@x"}).apply(own, splitHeader(own)); !bytes.Equal(got, own) {
		t.Errorf("own fields changed: %q", got)
	}
	// No empty line between header and body: one is added after ours.
	nosep := []byte("Subject: x\r\nthis is body\r\n")
	got = string(fixup{now: now, hostname: "h", sender: "s@x"}.apply(nosep, splitHeader(nosep)))
	if !strings.HasSuffix(got, "From: s@x\r\n\r\nthis is body\r\n") {
		t.Errorf("no separator: %q", got)
	}
	for name, want := range map[string]string{"Cron Daemon": "Cron Daemon", "Doe, John": `"Doe, John"`, "Zoë": "=?utf-8?q?Zo=C3=AB?="} {
		if p := phrase(name); p != want {
			t.Errorf("phrase(%q) = %q, want %q", name, p, want)
		}
	}
}

func TestExtractRecipients(t *testing.T) {
	raw := []byte("To: A <a@x>, b@x\r\nCc: undisclosed-recipients:;\r\nBcc: team: c@x, d@x;\r\n\r\n")
	got, err := extractRecipients(splitHeader(raw))
	if err != nil || !reflect.DeepEqual(got, []string{"a@x", "b@x", "c@x", "d@x"}) {
		t.Fatalf("%q %v", got, err)
	}
	resent := []byte("To: old@x\r\nResent-To: new@x\r\nResent-From: me@x\r\n\r\n")
	if got, _ := extractRecipients(splitHeader(resent)); !reflect.DeepEqual(got, []string{"new@x"}) {
		t.Fatalf("resent: %q", got)
	}
	if _, err := extractRecipients(splitHeader([]byte("To: <<broken\r\n\r\n"))); err == nil || !strings.Contains(err.Error(), "To") {
		t.Fatalf("bad To: %v", err)
	}
}

// FuzzMessage: any input read as a message gives CRLF lines, a header the
// fix-up can extend without touching the body, and recipients or a
// one-line error from -t; never a panic.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		"Subject: x\n\nbody\n", "From x\nTo: a@b\n\n.\n", "To: <<<\n\n", "no header at all\n",
		"A: b\r\n c\r\n\r\n", "Bcc: g: a@b, c@d;\n\nx", ": empty name\n\n", "To: undisclosed-recipients:;\n",
		"Subject: x", "\n\n\n", "Resent-To: a@b\nBcc: c@d\n\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, ignoreDots bool) {
		raw, err := readMessage(bytes.NewReader(in), ignoreDots, 0)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF left in %q", raw)
		}
		h := splitHeader(raw)
		if rcpts, err := extractRecipients(h); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error spans lines: %q", err)
		} else if err == nil {
			for _, r := range rcpts {
				if strings.ContainsAny(r, "\r\n") {
					t.Fatalf("recipient %q", r)
				}
			}
		}
		out := (fixup{now: time.Unix(0, 0).UTC(), hostname: "h", sender: "s@x", fullName: "N", dropBcc: true}).apply(raw, h)
		if !bytes.HasSuffix(out, raw[h.end:]) {
			t.Fatalf("body changed: %q -> %q", raw, out)
		}
		h2 := splitHeader(out)
		if !h2.has("Message-Id") || !h2.has("Date") || !h2.has("From") || h2.has("Bcc") {
			t.Fatalf("fields after fix-up of %q: %q", raw, out)
		}
	})
}
