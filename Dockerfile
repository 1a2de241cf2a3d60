# mailsandbox container image: one static binary on scratch (about 21 MB).
#
# Two ways to build it from this one file:
#
#   # 1. Release build, compiles inside Docker (pulls golang:1.26-alpine):
#   docker build -t mailsandbox .
#
#   # 2. No pulls at all: build the binary on the host, copy it in.
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o mailsandbox ./cmd/mailsandbox
#   docker build --target prebuilt -t mailsandbox .
#
#   docker run --rm -p 1025:1025 -p 8025:8025 -p 1110:1110 -p 1143:1143 mailsandbox
#   # persistent mail: -v mailsandbox:/data -e MAILSANDBOX_DB=/data/mail.db
#
# Why the stages are in this order (the e2e tests and CI rely on it; checked
# on Docker Engine 20.10 without buildx, where `docker build` is the legacy
# builder too):
# - The CI machine can pull no image, and testcontainers-go's FromDockerfile
#   (like `docker build` without buildx) uses the legacy builder. The legacy
#   builder builds EVERY stage up to the target, in file order, and pulls any
#   image a FROM names; stages after the target are never looked at. So the
#   no-pull path (`--target prebuilt`) must come first and must use only
#   `scratch` (which is never pulled) and earlier stages.
# - BuildKit builds only the stages the target needs, so with it the default
#   target (release, the last stage) never touches the prebuilt stage.
# - With the legacy builder and no --target, the prebuilt stage runs too, on
#   a context that may have no ./mailsandbox. Its COPY therefore names the
#   binary with a wildcard next to this Dockerfile (always in the context):
#   a COPY fails only when none of its sources match. That stage is then
#   thrown away; the release stage does not use it.
# - scratch has no /tmp, and the default store (no --db) is a temporary
#   SQLite file under $TMPDIR: WORKDIR creates /tmp, TMPDIR points at it.
#   The container runs as root, which owns that directory.
# - Inside a container the servers must listen on all interfaces, so the
#   MAILSANDBOX_*_ADDR defaults are overridden with 0.0.0.0 (every flag has
#   an environment variable; `docker run -e` can still change any of them).

# Shared runtime settings for both final stages.
FROM scratch AS base
WORKDIR /tmp
ENV TMPDIR=/tmp \
    MAILSANDBOX_SMTP_ADDR=0.0.0.0:1025 \
    MAILSANDBOX_HTTP_ADDR=0.0.0.0:8025 \
    MAILSANDBOX_POP3_ADDR=0.0.0.0:1110 \
    MAILSANDBOX_IMAP_ADDR=0.0.0.0:1143
EXPOSE 1025 8025 1110 1143
# `mailsandbox healthcheck` GETs http://127.0.0.1:8025/healthz and exits 0/1
# (scratch has no curl or shell).
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=3 \
    CMD ["/mailsandbox", "healthcheck"]
ENTRYPOINT ["/mailsandbox"]

# No-pull image from a binary built beforehand (see the top of this file).
# The wildcard keeps this stage from failing where ./mailsandbox is absent;
# the Dockerfile rides along as the always-present source (a harmless few
# KB at /Dockerfile).
FROM base AS prebuilt
COPY Dockerfile mailsandbo[x] /

# Release build: compile a static binary (no cgo: the SQLite driver is pure Go).
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/mailsandbox ./cmd/mailsandbox

# Release image (the default target).
FROM base AS release
COPY --from=build /out/mailsandbox /mailsandbox
