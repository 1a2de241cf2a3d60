package sandbox

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// relayRunner owns the relay queue's lifetime inside a sandbox.
type relayRunner struct{}

func newRelayRunner(cfg RelayConfig, log *slog.Logger, reg prometheus.Registerer) (*relayRunner, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	return nil, bad("relay-smarthost", "%v", errors.New("relay is not available in this build yet"))
}

func (r *relayRunner) enqueueHook() func(store.Envelope) []store.NewDelivery { return nil }
func (r *relayRunner) start(st *store.Store) error                          { return nil }
func (r *relayRunner) stop()                                                 {}
func (r *relayRunner) Release(ctx context.Context, id string, to []string) error {
	return errors.New("relay is not configured")
}
