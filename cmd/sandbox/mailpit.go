package sandbox

import (
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/mailsandbox/mailsandbox/api/mailpit"
	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// mailpitMount serves Mailpit's API on the HTTP listener, always.
func mailpitMount(st *store.Store, cfg Config, relay *relayRunner, log *slog.Logger) rest.Mount {
	opts := mailpit.Options{MaxMessageBytes: cfg.MaxMessageBytes, Database: cfg.DB, Version: "dev"}
	if strings.Contains(cfg.DB, "://") {
		opts.Database = "postgresql" // a DSN may carry a password
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		opts.Version = bi.Main.Version
	}
	if relay != nil {
		opts.Relay = relay
	}
	mp := mailpit.New(st, opts, log.With("component", "mailpit"))
	// Health probes (testcontainers' wait on /readyz) carry no credentials.
	return rest.Mount{Paths: mp.Paths(), Public: []string{"/livez", "/readyz"}, Register: mp.Register}
}
