# Bank accounts, event-sourced. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
GOLANGCI_LINT_VERSION := v2.15.0
BIN := bin

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/api and bin/projector
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

.PHONY: run
run: build ## start a private PostgreSQL (unless DATABASE_URL is set), the api and the projector; Ctrl-C stops all
	@# devrun is built, not `go run`: the go command itself exits 1 on Ctrl-C.
	$(GO) build -o $(BIN)/devrun ./tools/devrun
	exec $(BIN)/devrun $(BIN)/api $(BIN)/projector

# The principal and scopes of `make token`.
SUB ?= alice
SCOPE ?= bank:read bank:write

.PHONY: token
token: ## print a token for the api of make run (SUB=alice, SCOPE="bank:read bank:write"; valid 24h)
	@$(GO) run ./tools/devtoken -sub "$(SUB)" -scope "$(SCOPE)"

.PHONY: test
test: test-deps node_modules/.package-lock.json ## run every test (race detector on) against a throwaway PostgreSQL
	$(GO) test -race -count=1 -timeout 15m ./...

# Debian packages some tests run: chromium (the /docs browser test in e2e),
# prometheus (promtool, for deploy/prometheus's rule tests) and wrk (the
# benchmark's load generator, run by its smoke test). As root (CI, a fresh
# machine) they are installed when missing; otherwise this says what to
# install, and the tests that need them fail naming it.
TEST_DEBS := $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(shell command -v promtool),,prometheus) $(if $(shell command -v wrk),,wrk)
.PHONY: test-deps
test-deps: ## install what the tests need from Debian (chromium, prometheus) if missing; needs root
	@if [ -n "$(strip $(TEST_DEBS))" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_DEBS); \
		else \
			echo "make test: missing Debian packages: $(strip $(TEST_DEBS)) (sudo apt-get install $(strip $(TEST_DEBS)))"; \
		fi; \
	fi

.PHONY: lint
lint: lint-go lint-openapi lint-dockerfile ## every linter: Go, openapi.yaml, Dockerfile (installs the npm tools first if needed)

.PHONY: lint-go
lint-go: ## gofmt, go vet, go mod tidy check, golangci-lint
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# The npm lint tools (package.json, pinned by package-lock.json), installed
# when node_modules is missing or older than the lock file.
NPM_BIN := node_modules/.bin
node_modules/.package-lock.json: package.json package-lock.json
	npm ci

.PHONY: lint-openapi
lint-openapi: node_modules/.package-lock.json ## Spectral (.spectral.yaml) on openapi.yaml; any warning fails
	$(NPM_BIN)/spectral lint --fail-severity=warn openapi.yaml

.PHONY: lint-dockerfile
lint-dockerfile: node_modules/.package-lock.json ## dockerfile-utils on the Dockerfile; any warning fails
	@# dockerfile-utils exits 0 on warnings: any output is a failure.
	@out="$$($(NPM_BIN)/dockerfile-utils lint Dockerfile 2>&1)" && test -z "$$out" || \
		{ echo "$$out"; echo "dockerfile-utils lint Dockerfile: fix the problems above"; exit 1; }
	@echo "dockerfile-utils lint Dockerfile: no problems"

.PHONY: docs-assets
docs-assets: node_modules/.package-lock.json ## copy the /docs renderer (swagger-ui-dist, pinned by package-lock.json) into internal/apidocs/assets
	$(GO) run ./tools/vendordocs

.PHONY: fuzz
fuzz: ## fuzz the amount parser for a minute
	$(GO) test -run='^$$' -fuzz=FuzzParseAmount -fuzztime=60s ./internal/domain

.PHONY: bench
bench: bench-deps ## measure the service against pgbench on a private durable PostgreSQL (~5 min); results in bench-results/
	$(GO) run ./bench/cmd/benchrun -out bench-results $(BENCH_FLAGS)

.PHONY: bench-deps
bench-deps: ## install the benchmark's load generator (Debian's wrk) if missing; needs root
	@if ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; \
		else \
			echo "make bench: wrk is missing (sudo apt-get install wrk)"; exit 1; \
		fi; \
	fi

.PHONY: bench-publish
bench-publish: ## the NATS publisher: a 200,000-event backlog (BENCH_BACKLOG) beside the projector's catch-up, and its lag at BENCH_RATE deposits/s (~1 min)
	$(GO) test -count=1 -run='^$$' -bench=. -benchtime=1x -timeout=15m ./internal/publish

.PHONY: bench-smoke
bench-smoke: bench-deps ## run the whole benchmark pipeline in seconds (also part of make test)
	$(GO) test -count=1 -run TestSmoke ./bench

.PHONY: clean
clean: ## remove built binaries (keeps the dev database in .data/)
	rm -rf $(BIN)
