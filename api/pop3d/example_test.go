package pop3d_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"

	"github.com/mailsandbox/mailsandbox/api/pop3d"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// A POP3 server on a plain port with STLS, plus an implicit-TLS (pop3s)
// port served by the same server.
func ExampleNew() {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{}) // temporary store
	if err != nil {
		panic(err)
	}
	defer st.Close()

	var cert tls.Certificate // loaded elsewhere
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	srv := pop3d.New(st, pop3d.Options{TLSConfig: cfg}, slog.Default())

	plain, err := net.Listen("tcp", "127.0.0.1:1110")
	if err != nil {
		panic(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:1995")
	if err != nil {
		panic(err)
	}
	go srv.Serve(plain)
	go srv.Serve(tls.NewListener(secure, cfg))

	// ... later: let sessions finish their command, then stop.
	srv.Shutdown(ctx)
}
