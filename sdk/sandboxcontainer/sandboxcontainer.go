// Package sandboxcontainer is a testcontainers-go module for the mailsandbox
// image: Run starts a container, waits until it answers /healthz and hands
// back its mapped addresses and a ready [sdk.Client].
//
//	ctr, err := sandboxcontainer.Run(ctx, "mailsandbox:latest",
//		sandboxcontainer.WithMaxMessages(100))
//	testcontainers.CleanupContainer(t, ctr)
//	if err != nil { t.Fatal(err) }
//	smtpAddr, _ := ctr.SMTPEndpoint(ctx)
//	client, _ := ctr.Client(ctx)
//
// It lives in its own package so that importing sdk never pulls in Docker.
package sandboxcontainer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/mailsandbox/mailsandbox/sdk"
)

// The ports the image listens on inside the container.
const (
	SMTPPort = "1025/tcp"
	HTTPPort = "8025/tcp"
	POP3Port = "1110/tcp"
	IMAPPort = "1143/tcp"
)

// DefaultStartupTimeout bounds the wait for /healthz; override it with
// testcontainers.WithWaitStrategyAndDeadline.
const DefaultStartupTimeout = 60 * time.Second

// Container is a running mailsandbox container.
type Container struct {
	testcontainers.Container
}

// Run creates and starts a container from img (for example an image built
// from the repository's Dockerfile) and waits until GET /healthz answers
// 200. The module's defaults (exposed ports, the wait) come first, so opts
// can override them. On failure Run still returns the container if one was
// created, so the caller can clean it up (testcontainers.CleanupContainer),
// and the error is wrapped as "run mailsandbox: …".
func Run(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        img,
			ExposedPorts: []string{SMTPPort, HTTPPort, POP3Port, IMAPPort},
			Env:          map[string]string{},
			WaitingFor: wait.ForHTTP("/healthz").
				WithPort(HTTPPort).
				WithStartupTimeout(DefaultStartupTimeout).
				WithPollInterval(50 * time.Millisecond),
		},
		Started: true,
	}
	for _, opt := range opts {
		if err := opt.Customize(&req); err != nil {
			return nil, fmt.Errorf("run mailsandbox: customize: %w", err)
		}
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr}
	}
	if err != nil {
		return c, fmt.Errorf("run mailsandbox: %w", err)
	}
	return c, nil
}

func (c *Container) hostPort(ctx context.Context, port, what string) (string, error) {
	ep, err := c.PortEndpoint(ctx, port, "")
	if err != nil {
		return "", fmt.Errorf("mailsandbox %s endpoint: %w", what, err)
	}
	return ep, nil
}

// SMTPEndpoint returns the host:port that reaches the container's SMTP
// server from the host.
func (c *Container) SMTPEndpoint(ctx context.Context) (string, error) {
	return c.hostPort(ctx, SMTPPort, "SMTP")
}

// POP3Endpoint returns the host:port of the container's POP3 server.
func (c *Container) POP3Endpoint(ctx context.Context) (string, error) {
	return c.hostPort(ctx, POP3Port, "POP3")
}

// IMAPEndpoint returns the host:port of the container's IMAP server.
func (c *Container) IMAPEndpoint(ctx context.Context) (string, error) {
	return c.hostPort(ctx, IMAPPort, "IMAP")
}

// HTTPURL returns the base URL of the REST API and web UI, e.g.
// "http://localhost:32771".
func (c *Container) HTTPURL(ctx context.Context) (string, error) {
	ep, err := c.PortEndpoint(ctx, HTTPPort, "http")
	if err != nil {
		return "", fmt.Errorf("mailsandbox HTTP endpoint: %w", err)
	}
	return ep, nil
}

// Client returns an SDK client for the container's REST API.
func (c *Container) Client(ctx context.Context, opts ...sdk.Option) (*sdk.Client, error) {
	u, err := c.HTTPURL(ctx)
	if err != nil {
		return nil, err
	}
	return sdk.New(u, opts...), nil
}

// EnvName returns the environment variable for a command-line flag:
// "relay-smarthost" becomes "MAILSANDBOX_RELAY_SMARTHOST".
func EnvName(flag string) string {
	flag = strings.TrimLeft(flag, "-")
	return "MAILSANDBOX_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// WithFlag sets the environment variable of the command-line flag name
// (without dashes), e.g. WithFlag("max-age", "1h"). Every flag of
// `mailsandbox` has one.
func WithFlag(name, value string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{EnvName(name): value})
}

// WithEnv sets raw environment variables of the container.
func WithEnv(env map[string]string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(env)
}

// WithMaxMessages keeps at most n messages (older ones are pruned).
func WithMaxMessages(n int) testcontainers.CustomizeRequestOption {
	return WithFlag("max-messages", strconv.Itoa(n))
}

// WithMaxAge prunes messages older than d.
func WithMaxAge(d time.Duration) testcontainers.CustomizeRequestOption {
	return WithFlag("max-age", d.String())
}

// WithMaxMessageBytes rejects larger mail with 552.
func WithMaxMessageBytes(n int64) testcontainers.CustomizeRequestOption {
	return WithFlag("max-message-size", strconv.FormatInt(n, 10))
}

// WithDatabase stores mail in dsn: a file path inside the container (mount
// a volume there) or a postgres:// URL.
func WithDatabase(dsn string) testcontainers.CustomizeRequestOption {
	return WithFlag("db", dsn)
}

// WithTLSSelfSigned makes the sandbox create a self-signed certificate at
// start, so SMTP offers STARTTLS, POP3 STLS and IMAP STARTTLS.
func WithTLSSelfSigned() testcontainers.CustomizeRequestOption {
	return WithFlag("tls-self-signed", "true")
}

// WithRelaySmarthost relays through host:port (reachable from inside the
// container, e.g. a network alias).
func WithRelaySmarthost(hostport string) testcontainers.CustomizeRequestOption {
	return WithFlag("relay-smarthost", hostport)
}

// WithRelaySmarthostAuth sets the smarthost's credentials.
func WithRelaySmarthostAuth(user, password string) testcontainers.CustomizeRequestOption {
	return WithFlag("relay-smarthost-auth", user+":"+password)
}

// WithRelayMX delivers relayed mail directly to each domain's MX hosts.
func WithRelayMX() testcontainers.CustomizeRequestOption {
	return WithFlag("relay-mx", "true")
}

// WithRelayMatch auto-relays captured mail to recipients matching any of
// the glob patterns (e.g. "*@mycompany.com"). The patterns are joined with
// commas, the environment form of a repeated flag.
func WithRelayMatch(patterns ...string) testcontainers.CustomizeRequestOption {
	return WithFlag("relay-match", strings.Join(patterns, ","))
}

// WithRelayRoutes sets fixed routes, domain to host:port, which beat MX and
// smarthost.
func WithRelayRoutes(routes map[string]string) testcontainers.CustomizeRequestOption {
	parts := make([]string, 0, len(routes))
	for _, d := range slices.Sorted(maps.Keys(routes)) {
		parts = append(parts, d+"="+routes[d])
	}
	return WithFlag("relay-route", strings.Join(parts, ","))
}

// WithRelayRetry sets the backoff between delivery attempts.
func WithRelayRetry(minDelay, maxDelay time.Duration) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(map[string]string{
		EnvName("relay-retry-min"): minDelay.String(),
		EnvName("relay-retry-max"): maxDelay.String(),
	})
}

// WithRelayMaxAge gives up (and bounces) after d.
func WithRelayMaxAge(d time.Duration) testcontainers.CustomizeRequestOption {
	return WithFlag("relay-max-age", d.String())
}
