#!/usr/bin/env bash
# Regenerates the collector distribution's Go sources (main.go,
# components.go, go.mod, go.sum) from builder-config.yaml with the
# OpenTelemetry Collector Builder of the same release. The generated files
# are committed, so building needs only `go build` (see build.sh).
set -euo pipefail
cd "$(dirname "$0")"
release=$(sed -n 's/^  version: //p' builder-config.yaml)
go run "go.opentelemetry.io/collector/cmd/builder@v${release}" \
  --config builder-config.yaml --skip-compilation --skip-get-modules
# The loadbalancing exporter's AWS Cloud Map resolver asks for
# aws-sdk-go-v2/service/servicediscovery v1.48.0, which the Go module proxy
# refuses ("403 Forbidden: This module version is not available"); v1.49.0,
# the next release, is served and keeps the same API.
go get github.com/aws/aws-sdk-go-v2/service/servicediscovery@v1.49.0
# The filter processor's OTTL packages, at the same release: left to itself,
# `go mod tidy` looks for them in the newest contrib modules, which the proxy
# refuses (pkg/ottl/contexts/xprofile v0.165.1: 403).
contrib=github.com/open-telemetry/opentelemetry-collector-contrib
go get "$contrib/processor/filterprocessor@v${release}" "$contrib/pkg/ottl@v${release}" \
  "$contrib/internal/filter@v${release}"
go mod tidy
