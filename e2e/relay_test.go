package e2e

import (
	"context"
	"fmt"
	"net/smtp"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxcontainer"
)

// TestRelayAcrossContainers is the relay from outside: a sandbox container
// relays mail for dest.test to a second sandbox container (network alias
// "dest") over a Docker network. The destination is stopped, so a second
// message queues and is retried; it is started again and the message
// arrives.
func TestRelayAcrossContainers(t *testing.T) {
	ref := image(t)
	t.Parallel() // after image: its skip (no Docker) keeps the package out of the cache
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}

	dest, err := sandboxcontainer.Run(ctx, ref,
		network.WithNetwork([]string{"dest"}, nw),
		sandboxcontainer.WithEnv(map[string]string{
			"MAILSANDBOX_SMTP_ADDR": "0.0.0.0:1025",
			"MAILSANDBOX_HTTP_ADDR": "0.0.0.0:8025",
		}),
	)
	testcontainers.CleanupContainer(t, dest)
	if err != nil {
		t.Fatalf("start destination: %v", err)
	}
	relay, err := sandboxcontainer.Run(ctx, ref,
		network.WithNetwork([]string{"relay"}, nw),
		sandboxcontainer.WithRelayRoutes(map[string]string{"dest.test": "dest:1025"}),
		sandboxcontainer.WithRelayMatch("*@dest.test"),
		sandboxcontainer.WithRelayRetry(time.Second, 2*time.Second),
		sandboxcontainer.WithRelayMaxAge(10*time.Minute),
	)
	testcontainers.CleanupContainer(t, relay)
	if err != nil {
		t.Fatalf("start relaying sandbox: %v", err)
	}

	relayClient, err := relay.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr, err := relay.SMTPEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// 1. Relay works: mail to x@dest.test reaches the destination.
	sendSMTP(t, smtpAddr, "app@relay.example", "x@dest.test", "relay one")
	destClient, err := dest.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	m1, err := destClient.Wait(wctx, sdk.Filter{To: "x@dest.test", Subject: "relay one"})
	wcancel()
	if err != nil {
		t.Fatalf("first message never reached the destination: %v", err)
	}
	if m1.Envelope.MailFrom != "app@relay.example" {
		t.Errorf("destination got MAIL FROM %q, want app@relay.example", m1.Envelope.MailFrom)
	}

	// 2. Destination down: the second message queues and is retried.
	stopTimeout := 10 * time.Second
	if err := dest.Stop(ctx, &stopTimeout); err != nil {
		t.Fatalf("stop destination: %v", err)
	}
	sendSMTP(t, smtpAddr, "app@relay.example", "x@dest.test", "relay two")
	wctx, wcancel = context.WithTimeout(ctx, 90*time.Second)
	captured, err := relayClient.Wait(wctx, sdk.Filter{To: "x@dest.test", Subject: "relay two"})
	wcancel()
	if err != nil {
		t.Fatalf("relaying sandbox did not capture the second message: %v", err)
	}
	retried := waitDelivery(t, ctx, relayClient, captured.ID, "queued with attempts >= 2 and a last error", func(d sdk.Delivery) bool {
		return d.Status == "queued" && d.Attempts >= 2 && d.LastError != ""
	})
	t.Logf("destination down: delivery %s queued after %d attempts, last error %q", retried.ID, retried.Attempts, retried.LastError)
	if retried.Destination == "" {
		t.Errorf("queued delivery has no destination: %+v", retried)
	}

	// 3. Destination up again (with a new, empty store): the message arrives.
	restart := time.Now()
	if err := dest.Start(ctx); err != nil {
		t.Fatalf("restart destination: %v", err)
	}
	// The HTTP port mapping may change across a restart: ask again.
	destClient, err = dest.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 90*time.Second)
	m2, err := destClient.Wait(wctx, sdk.Filter{To: "x@dest.test", Subject: "relay two"})
	wcancel()
	if err != nil {
		t.Fatalf("second message never reached the restarted destination: %v", err)
	}
	arrived := time.Since(restart)
	done := waitDelivery(t, ctx, relayClient, captured.ID, "delivered", func(d sdk.Delivery) bool {
		return d.Status == "delivered"
	})
	report(t, "relay: destination restart to delivery of the queued message: %s (delivered after %d attempts)", arrived.Round(time.Millisecond), done.Attempts)
	if m2.Envelope.MailFrom != "app@relay.example" {
		t.Errorf("restarted destination got MAIL FROM %q, want app@relay.example", m2.Envelope.MailFrom)
	}
	if done.Attempts <= retried.Attempts {
		t.Errorf("delivered after %d attempts, but %d had already failed", done.Attempts, retried.Attempts)
	}
}

// sendSMTP submits one plain message over SMTP.
func sendSMTP(t *testing.T, addr, from, to, subject string) {
	t.Helper()
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nrelayed across containers\r\n", from, to, subject)
	if err := smtp.SendMail(addr, nil, from, []string{to}, []byte(msg)); err != nil {
		t.Fatalf("SMTP send %q to %s: %v", subject, addr, err)
	}
}

// waitDelivery polls the relay queue until the delivery of message msgID
// satisfies ok, and returns it.
func waitDelivery(t *testing.T, ctx context.Context, c *sdk.Client, msgID, want string, ok func(sdk.Delivery) bool) sdk.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last []sdk.Delivery
	var lastErr error
	for {
		q, err := c.RelayQueue(ctx)
		if err == nil {
			last = q
			for _, d := range q {
				if d.MessageID == msgID && ok(d) {
					return d
				}
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("relay queue: no delivery of message %s %s: %v (last error %v); queue: %+v", msgID, want, ctx.Err(), lastErr, last)
		case <-tick.C:
		}
	}
}
