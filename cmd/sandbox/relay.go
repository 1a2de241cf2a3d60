package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/relay"
)

// relayRunner owns the relay queue's lifetime inside a sandbox. The store
// needs the relay's rules at ingest and the relay needs the store, so the
// rules hook is handed to the store first and the queue is built after.
type relayRunner struct {
	opts relay.Options
	log  *slog.Logger
	q    *relay.Queue
}

func newRelayRunner(cfg RelayConfig, log *slog.Logger, reg prometheus.Registerer) (*relayRunner, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	opts := relay.Options{
		Smarthost: cfg.Smarthost, SmarthostAuth: cfg.SmarthostAuth, SmarthostInsecureTLS: cfg.SmarthostInsecureTLS,
		MX: cfg.MX, Routes: cfg.Routes, Match: cfg.Match,
		MaxAge: cfg.MaxAge, RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax,
		Registerer: reg,
		HeloName:   cfg.Helo,
	}
	if err := opts.Validate(); err != nil {
		if strings.HasPrefix(err.Error(), "relay helo") {
			return nil, bad("relay-helo", "%v", err)
		}
		return nil, bad("relay-smarthost", "%v", err)
	}
	return &relayRunner{opts: opts, log: log}, nil
}

// enqueueHook matches recipients against the rules at ingest. It is only
// called once start has run: listeners open after it.
func (r *relayRunner) enqueueHook() func(store.Envelope) []store.NewDelivery {
	return func(env store.Envelope) []store.NewDelivery { return r.q.Enqueue(env) }
}

func (r *relayRunner) start(st *store.Store) error {
	q, err := relay.New(st, r.opts, r.log)
	if err != nil {
		return fmt.Errorf("start relay: %w", err)
	}
	r.q = q
	q.Start()
	return nil
}

func (r *relayRunner) stop() {
	if r.q != nil {
		r.q.Close()
	}
}

// Release puts a captured message on the relay queue (REST's release).
func (r *relayRunner) Release(ctx context.Context, id string, to []string) error {
	return r.q.Release(ctx, id, to)
}
