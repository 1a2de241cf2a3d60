package sandbox

import (
	"log/slog"
	"time"

	"github.com/mailsandbox/mailsandbox/api/mailpit"
	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/webhook"
)

// WebhookConfig is the webhooks' part of Config. Webhooks are off unless
// URLs is set.
type WebhookConfig struct {
	URLs   []string // every new message is posted to each
	Secret string   // "" sends no signature
	// Format is "native" (the REST summary; "" means native) or "mailpit"
	// (Mailpit's MessageSummary).
	Format   string
	RetryMin time.Duration // 0: 1s
	RetryMax time.Duration // 0: 10m
	MaxAge   time.Duration // give up after this; 0: 24h
	Timeout  time.Duration // one attempt, connect to end of answer; 0: 10s
}

func defaultWebhookConfig() WebhookConfig {
	return WebhookConfig{Format: "native", RetryMin: webhook.DefaultRetryMin, RetryMax: webhook.DefaultRetryMax, MaxAge: webhook.DefaultMaxAge, Timeout: webhook.DefaultTimeout}
}

func (w WebhookConfig) validate() error {
	for _, u := range w.URLs {
		if err := webhook.CheckURL(u); err != nil {
			return bad("webhook-url", "%v", err)
		}
	}
	switch w.Format {
	case "", "native", "mailpit":
	default:
		return bad("webhook-format", "want native or mailpit, got %q", w.Format)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"webhook-max-age", w.MaxAge}, {"webhook-retry-min", w.RetryMin}, {"webhook-retry-max", w.RetryMax}, {"webhook-timeout", w.Timeout}} {
		if d.v < 0 {
			return bad(d.flag, "must not be negative")
		}
	}
	if w.RetryMin > 0 && w.RetryMax > 0 && w.RetryMin > w.RetryMax {
		return bad("webhook-retry-max", "must be at least --webhook-retry-min (%s)", w.RetryMin)
	}
	if len(w.URLs) == 0 && w.Secret != "" {
		return bad("webhook-secret", "needs --webhook-url")
	}
	return nil
}

// webhookRunner owns the webhook sender's lifetime; like the relay, the
// store is opened with the URLs (so their marks exist before mail comes)
// and the sender is built on the store.
type webhookRunner struct {
	opts webhook.Options
	log  *slog.Logger
	s    *webhook.Sender
}

func newWebhookRunner(cfg WebhookConfig, log *slog.Logger) *webhookRunner {
	if len(cfg.URLs) == 0 {
		return nil
	}
	payload := rest.SummaryPayload
	if cfg.Format == "mailpit" {
		payload = mailpit.SummaryPayload
	}
	return &webhookRunner{log: log, opts: webhook.Options{
		URLs: cfg.URLs, Secret: cfg.Secret, Payload: payload,
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, MaxAge: cfg.MaxAge, Timeout: cfg.Timeout,
	}}
}

func (r *webhookRunner) start(st *store.Store) error {
	s, err := webhook.New(st, r.opts, r.log)
	if err != nil {
		return bad("webhook-url", "%v", err)
	}
	r.s = s
	s.Start()
	return nil
}

func (r *webhookRunner) stop() {
	if r.s != nil {
		r.s.Close()
	}
}
