package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// logReadyLines logs Mailpit's two start-up lines once every listener is
// bound: testcontainers-python waits for ".*accessible via.*" and Quarkus
// for ".*\[http\] accessible via.*", then connect to SMTP at once.
func logReadyLines(log *slog.Logger, sb *sandbox.Sandbox) {
	if a := sb.SMTPAddr(); a != "" {
		log.Info("[smtpd] starting on " + a)
	}
	if u := sb.URL(); u != "" {
		log.Info("[http] accessible via " + browsable(u) + "/")
	}
}

// browsable names an unspecified listen address (0.0.0.0, [::]) by
// localhost, which a browser can open.
func browsable(u string) string {
	for _, any := range []string{"//0.0.0.0:", "//[::]:"} {
		if strings.Contains(u, any) {
			return strings.Replace(u, any, "//localhost:", 1)
		}
	}
	return u
}

// healthPath is /healthz under the webroot the sandbox was started with
// (the container's HEALTHCHECK runs `mailsandbox healthcheck` with the
// same environment).
func healthPath() string {
	w, ok := os.LookupEnv(envName("http-webroot"))
	if !ok {
		w = os.Getenv("MP_WEBROOT")
	}
	return rest.NormalizeWebroot(w) + "healthz"
}
