package sandboxcontainer

import (
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"smtp-addr":         "MAILSANDBOX_SMTP_ADDR",
		"--relay-retry-min": "MAILSANDBOX_RELAY_RETRY_MIN",
		"db":                "MAILSANDBOX_DB",
	} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestOptionsSetEnv(t *testing.T) {
	req := testcontainers.GenericContainerRequest{}
	opts := []testcontainers.ContainerCustomizer{
		WithMaxMessages(50),
		WithMaxAge(2 * time.Hour),
		WithRelaySmarthost("smarthost:25"),
		WithRelayMatch("*@mycompany.com", "ops@*"),
		WithRelayRoutes(map[string]string{"b.example": "mx-b:25", "a.example": "mx-a:25"}),
		WithRelayRetry(time.Second, time.Minute),
		WithEnv(map[string]string{"MAILSANDBOX_HTTP_AUTH_FILE": "/auth"}),
	}
	for _, o := range opts {
		if err := o.Customize(&req); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"MAILSANDBOX_MAX_MESSAGES":    "50",
		"MAILSANDBOX_MAX_AGE":         "2h0m0s",
		"MAILSANDBOX_RELAY_SMARTHOST": "smarthost:25",
		"MAILSANDBOX_RELAY_MATCH":     "*@mycompany.com,ops@*",
		"MAILSANDBOX_RELAY_ROUTE":     "a.example=mx-a:25,b.example=mx-b:25",
		"MAILSANDBOX_RELAY_RETRY_MIN": "1s",
		"MAILSANDBOX_RELAY_RETRY_MAX": "1m0s",
		"MAILSANDBOX_HTTP_AUTH_FILE":  "/auth",
	}
	for k, v := range want {
		if req.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, req.Env[k], v)
		}
	}
}
