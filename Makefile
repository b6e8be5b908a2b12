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

.PHONY: test
test: ## run every test (race detector on) against a throwaway PostgreSQL
	$(GO) test -race -count=1 -timeout 15m ./...

.PHONY: lint
lint: ## gofmt, go vet, golangci-lint, go mod tidy check
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

.PHONY: fuzz
fuzz: ## fuzz the amount parser for a minute
	$(GO) test -run='^$$' -fuzz=FuzzParseAmount -fuzztime=60s ./internal/domain

.PHONY: clean
clean: ## remove built binaries (keeps the dev database in .data/)
	rm -rf $(BIN)
