# syntax=docker/dockerfile:1
#
# The api and the projector, statically linked, on distroless as nonroot.
#
#   docker build -t evbank/bank-api .                          # default target: api
#   docker build --target projector -t evbank/bank-projector .
#
# Both targets hold both binaries (/usr/local/bin/api and
# /usr/local/bin/projector); they differ in ENTRYPOINT and HEALTHCHECK only, so
# the second build is a cache hit but for its last layer.
#
# Base images are pinned by multi-arch index digest, the tag kept for people
# to read: a rebuild of an old commit gets the same compiler and base. The
# digests are those published for these tags as of 2026-09-30; refresh tag and
# digest together (keep the Go version equal to go.mod's `go` line, which
# deploy/dockerfile_test.go checks):
#   docker buildx imagetools inspect golang:1.26.8-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
WORKDIR /src
# The toolchain is the image's: never download another one during a build.
ENV GOTOOLCHAIN=local GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN go mod download
# Only what the binaries are built from (migrations/ is embedded in both,
# openapi.yaml in the api through the root package openapi.go).
COPY openapi.go openapi.yaml ./
COPY cmd/ cmd/
COPY internal/ internal/
COPY migrations/ migrations/
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/api ./cmd/projector

# static-debian12: CA certificates, tzdata and /etc/passwd, no shell; the
# nonroot user is uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab AS runtime
COPY --from=build /out/api /out/projector /usr/local/bin/
USER nonroot:nonroot
# HTTP_ADDR (api) and PROJECTOR_ADDR (projector: /healthz, /readyz, /metrics).
EXPOSE 8080 9090

FROM runtime AS projector
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/projector", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/projector"]

# The last stage is the default target. `api migrate` runs the migrations.
FROM runtime AS api
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/api"]
