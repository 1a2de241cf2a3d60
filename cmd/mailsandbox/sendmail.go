package main

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/mailsandbox/mailsandbox/sendmail"
)

// asSendmail reports which sendmail name argv0 is, if any: installed or
// linked as /usr/sbin/sendmail (what PHP, cron and Docker images call),
// mailq or newaliases, the binary behaves as `mailsandbox sendmail`
// started under that name.
func asSendmail(argv0 string) (string, bool) {
	name := filepath.Base(argv0)
	switch name {
	case "sendmail", "mailq", "newaliases":
		return name, true
	}
	return name, false
}

// runSendmail is `mailsandbox sendmail` (name "sendmail") and the linked
// names; package sendmail does the work.
func runSendmail(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return sendmail.Run(context.Background(), name, args, sendmail.Env{
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv,
	})
}
