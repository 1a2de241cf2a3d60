package ui_test

import "testing"

// startSandbox starts the whole sandbox in-process. Until cmd/sandbox is
// wired in, the browser tests need MAILSANDBOX_UI_TEST_HTTP/_SMTP.
func startSandbox(t *testing.T) env {
	t.Skip("browser tests: in-process sandbox not wired yet; set MAILSANDBOX_UI_TEST_HTTP and MAILSANDBOX_UI_TEST_SMTP to run against a running server")
	return env{}
}
