package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/smtp"
	"net/textproto"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// readyPath is what testcontainers-go's Mailpit module waits for (GET
// /readyz = 200 on 8025). /readyz comes with the Mailpit API layer
// (api/mailpit, another branch); until both are merged this test waits
// on a route this branch does not serve.
const readyPath = "/readyz"

// TestMailpitModuleDropIn starts the image the way testcontainers-go's
// Mailpit module does (its Go module is not served here, so with the
// generic container and the module's settings): ports 1025 and 8025,
// MP_SMTP_AUTH with MP_SMTP_AUTH_ALLOW_INSECURE, MP_MAX_MESSAGES, and a
// wait on GET /readyz.
func TestMailpitModuleDropIn(t *testing.T) {
	ref := image(t)
	t.Parallel() // after image: its skip (no Docker) keeps the package out of the cache
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        ref,
			ExposedPorts: []string{"1025/tcp", "8025/tcp"},
			Env: map[string]string{
				"MP_SMTP_AUTH":                "user1:pass1 user2:pass2",
				"MP_SMTP_AUTH_ALLOW_INSECURE": "true",
				"MP_MAX_MESSAGES":             "2",
			},
			WaitingFor: wait.ForHTTP(readyPath).WithPort("8025/tcp").WithStatusCodeMatcher(func(s int) bool { return s == 200 }),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("run image as testcontainers' Mailpit module does: %v", err)
	}
	smtpAddr, err := ctr.PortEndpoint(ctx, "1025/tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	httpURL, err := ctr.PortEndpoint(ctx, "8025/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}

	if err := sendAuth(smtpAddr, nil, "none"); replyCode(err) != 530 {
		t.Errorf("without credentials: %v, want 530", err)
	}
	if err := sendAuth(smtpAddr, plainAuth{"user1", "nope"}, "wrong"); replyCode(err) != 535 {
		t.Errorf("wrong credentials: %v, want 535", err)
	}
	for i := range 3 {
		if err := sendAuth(smtpAddr, plainAuth{"user2", "pass2"}, fmt.Sprintf("kept %d", i)); err != nil {
			t.Fatalf("right credentials refused: %v", err)
		}
	}
	// MP_MAX_MESSAGES caps the store (pruning follows ingest closely).
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(httpURL + "/api/v1/messages/search")
		if err != nil {
			t.Fatal(err)
		}
		var list struct{ Total int }
		json.NewDecoder(res.Body).Decode(&list)
		res.Body.Close()
		if list.Total == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MP_MAX_MESSAGES=2: the store holds %d messages", list.Total)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMailpitLogWait starts the image as testcontainers-python and Quarkus
// do: they wait for a log line, ".*accessible via.*" and
// ".*\[http\] accessible via.*".
func TestMailpitLogWait(t *testing.T) {
	ref := image(t)
	t.Parallel() // after image: its skip (no Docker) keeps the package out of the cache
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, re := range []string{`.*accessible via.*`, `.*\[http\] accessible via.*`} {
		ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
			ContainerRequest: testcontainers.ContainerRequest{
				Image:        ref,
				ExposedPorts: []string{"1025/tcp", "8025/tcp"},
				Env:          map[string]string{"MP_SMTP_AUTH_ACCEPT_ANY": "true"},
				WaitingFor:   wait.ForLog(re).AsRegexp().WithStartupTimeout(time.Minute),
			},
			Started: true,
		})
		testcontainers.CleanupContainer(t, ctr)
		if err != nil {
			t.Fatalf("wait for log %s: %v", re, err)
		}
		// Waited for the log line only: SMTP must answer at once.
		smtpAddr, err := ctr.PortEndpoint(ctx, "1025/tcp", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := sendAuth(smtpAddr, plainAuth{"any", "thing"}, "after the log line"); err != nil {
			t.Errorf("SMTP right after %s: %v", re, err)
		}
	}
}

func sendAuth(addr string, auth smtp.Auth, subject string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail("app@example.com"); err != nil {
		return err
	}
	if err := c.Rcpt("user@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Subject: %s\r\n\r\nx\r\n", subject)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// plainAuth is SASL PLAIN without net/smtp's TLS-or-localhost rule: the
// container's mapped port is "remote" to net/smtp.
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}
func (a plainAuth) Next([]byte, bool) ([]byte, error) { return nil, nil }
