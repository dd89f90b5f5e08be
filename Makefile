# Build, code generation and test entry points for the otelcol-metrics distribution.
#
# Tools are pinned below and installed into ./bin with `go install`; each tool is a
# file target, so an installed tool is not rebuilt. Bump a version and run
# `make clean-tools tools` to pick it up.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
BIN_DIR   := bin
BUILD_DIR := _build
PROTO_DIR := proto

# Pinned tool versions.
BUF_VERSION                   := v1.75.0
# Keep equal to google.golang.org/protobuf in go.mod (the runtime the generated code
# targets); `make proto` warns when they differ.
PROTOC_GEN_GO_VERSION         := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION    := v1.6.0
PROTOC_GEN_GO_VTPROTO_VERSION := v0.6.0
OCB_VERSION                   := v0.165.0
GRPCURL_VERSION               := v1.9.3

BUF                   := $(BIN_DIR)/buf
PROTOC_GEN_GO         := $(BIN_DIR)/protoc-gen-go
PROTOC_GEN_GO_GRPC    := $(BIN_DIR)/protoc-gen-go-grpc
PROTOC_GEN_GO_VTPROTO := $(BIN_DIR)/protoc-gen-go-vtproto
OCB                   := $(BIN_DIR)/builder
GRPCURL               := $(BIN_DIR)/grpcurl

PROTO_PLUGINS := $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(PROTOC_GEN_GO_VTPROTO)
TOOLS         := $(BUF) $(PROTO_PLUGINS) $(OCB) $(GRPCURL)

DIST        := ./$(BUILD_DIR)/otelcol-metrics
CTL         := ./$(BUILD_DIR)/metricsctl
RUN_CONFIG  ?= testdata/config.yaml
TEST_TIMEOUT ?= 20m
TEST_FLAGS  ?= -race -count=1 -timeout $(TEST_TIMEOUT)
BENCH_PKGS  ?= ./internal/... ./receiver/...

GO_INSTALL = GOBIN=$(CURDIR)/$(BIN_DIR) $(GO) install

.PHONY: tools grpcurl metricsctl clean-tools proto proto-lint proto-check generate generate-check build run test vet fuzz-smoke fmt bench clean

## tools: install the pinned tools into ./bin
tools: $(TOOLS)

## grpcurl: install only grpcurl into ./bin (an alternative to metricsctl)
grpcurl: $(GRPCURL)

$(BUF):
	$(GO_INSTALL) github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(PROTOC_GEN_GO):
	$(GO_INSTALL) google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(PROTOC_GEN_GO_GRPC):
	$(GO_INSTALL) google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(PROTOC_GEN_GO_VTPROTO):
	$(GO_INSTALL) github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_GO_VTPROTO_VERSION)

$(OCB):
	$(GO_INSTALL) go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

$(GRPCURL):
	$(GO_INSTALL) github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

clean-tools:
	rm -rf $(BIN_DIR)

## proto: lint the protos and regenerate the Go code beside them
proto: proto-lint $(PROTO_PLUGINS)
	@runtime="$$($(GO) list -m -f '{{.Version}}' google.golang.org/protobuf 2>/dev/null || true)"; \
	if [[ -n "$$runtime" && "$$runtime" != "$(PROTOC_GEN_GO_VERSION)" ]]; then \
		echo "warning: protoc-gen-go $(PROTOC_GEN_GO_VERSION) differs from google.golang.org/protobuf $$runtime in go.mod; update PROTOC_GEN_GO_VERSION" >&2; \
	fi
	cd $(PROTO_DIR) && $(CURDIR)/$(BUF) generate

proto-lint: $(BUF)
	cd $(PROTO_DIR) && $(CURDIR)/$(BUF) lint

## proto-check: regenerate and fail if the committed generated code is stale
proto-check: proto
	@changes="$$(git status --porcelain -- $(PROTO_DIR))"; \
	if [[ -n "$$changes" ]] || ! git diff --quiet -- $(PROTO_DIR); then \
		echo "proto-check: generated code under $(PROTO_DIR)/ is stale or uncommitted." >&2; \
		echo "Run 'make proto' and commit the result. Changes:" >&2; \
		echo "$$changes" >&2; \
		git --no-pager diff --stat -- $(PROTO_DIR) >&2; \
		exit 1; \
	fi
	@echo "proto-check: generated code is up to date."

# Components whose internal/metadata and generated_*_test.go come from mdatagen (a Go tool
# of go.mod, v0.159.0: the newest the module proxy serves; it builds with our release).
MDATAGEN_DIRS := receiver/metricsservicereceiver processor/metricsstoreprocessor \
	extension/metricsstoreextension extension/metricsmanagementextension \
	exporter/providersexporter exporter/pushgatewayexporter exporter/statsdexporter \
	receiver/prometheusremotewritereceiver

## generate: regenerate each component's internal/metadata and generated tests from its metadata.yaml
generate:
	for d in $(MDATAGEN_DIRS); do (cd $$d && $(GO) tool mdatagen metadata.yaml); done

## generate-check: regenerate and fail if the committed mdatagen output is stale
generate-check: generate
	@changes="$$(git status --porcelain -- $(MDATAGEN_DIRS))"; \
	if [[ -n "$$changes" ]]; then \
		echo "generate-check: mdatagen output is stale or uncommitted; run 'make generate' and commit:" >&2; \
		echo "$$changes" >&2; \
		exit 1; \
	fi
	@echo "generate-check: mdatagen output is up to date."

## build: build the collector distribution with ocb into ./_build
build: $(OCB)
	./$(OCB) --config builder-config.yaml

## metricsctl: build the CLI into ./_build/metricsctl
metricsctl:
	$(GO) build -o $(CTL) ./cmd/metricsctl

## run: build the distribution and metricsctl, and run the distribution with the default config
run: build metricsctl
	$(DIST) --config file:$(RUN_CONFIG)

## test: run all tests with the race detector
test:
	$(GO) test $(TEST_FLAGS) ./...

vet:
	$(GO) vet ./...

# Every fuzz target for a few seconds (FUZZTIME=3s per target).
fuzz-smoke:
	scripts/fuzz-smoke.sh

fmt:
	$(GO) fmt ./...

## bench: run the benchmarks (no tests)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_PKGS)

clean:
	rm -rf $(BUILD_DIR)
	$(GO) clean -testcache
