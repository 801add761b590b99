# syntax=docker/dockerfile:1
#
# notifizz-bridge image: a static binary on distroless, running as a non-root user.
#
#   docker build -t notifizz-bridge \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 127.0.0.1:8080:8080 -v notifizz-data:/data \
#     -e NOTIFIZZ_SDK_SECRET_KEY -e NOTIFIZZ_AUTH_SECRET_KEY -e NOTIFIZZ_BRIDGE_NATS_TOKEN notifizz-bridge
#
# The image's default config is config.example.yaml, driven by the environment: set NATS_URL
# to use an external NATS server instead of the embedded one, NOTIFIZZ_SDK_SECRET_KEY and
# NOTIFIZZ_AUTH_SECRET_KEY for the API, and NOTIFIZZ_BRIDGE_NATS_TOKEN for the token the embedded
# server requires of its clients. For anything else, mount a config of your own over
# /etc/notifizz-bridge/config.yaml. Add "--dry-run" after "run" to print the API calls instead.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What `notifizz-bridge version` says; the build context has no .git to read it from.
ARG VERSION="(devel)"
ARG REVISION=""
# Keep this line identical to the go build line of .ci/build-static.sh, which CI runs.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.stampedVersion=${VERSION} -X main.stampedRevision=${REVISION}" -o /out/notifizz-bridge ./cmd/notifizz-bridge
# The embedded server's store must be writable by the non-root user of the final image, which
# has no shell to create it.
RUN mkdir -p /out/data/nats

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/notifizz-bridge /usr/local/bin/notifizz-bridge
COPY config.example.yaml /etc/notifizz-bridge/config.yaml
COPY --from=build --chown=65532:65532 /out/data /data
# Inside a container the listeners must leave loopback to be reachable through published
# ports. The embedded server then refuses to start without authentication: give it
# NOTIFIZZ_BRIDGE_NATS_TOKEN, or, on a network you trust, NOTIFIZZ_BRIDGE_NATS_ALLOW_NO_AUTH=true.
ENV NOTIFIZZ_BRIDGE_NATS_LISTEN=0.0.0.0:4222 \
    NOTIFIZZ_BRIDGE_HTTP_LISTEN=0.0.0.0:8080 \
    NOTIFIZZ_BRIDGE_STORE_DIR=/data/nats \
    NOTIFIZZ_BRIDGE_LOG_FORMAT=json
USER nonroot:nonroot
VOLUME /data
# 4222: embedded NATS (clients and `notifizz-bridge publish`); 8080: /healthz, /readyz, /metrics.
EXPOSE 4222 8080
ENTRYPOINT ["/usr/local/bin/notifizz-bridge"]
CMD ["run", "--config", "/etc/notifizz-bridge/config.yaml"]
