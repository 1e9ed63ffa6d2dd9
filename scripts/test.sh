#!/usr/bin/env bash
# The whole test suite: what the README tells you to run and what CI runs.
#
#   scripts/test.sh            unit tests, fuzz smoke, Nix/systemd checks, and the
#                              end-to-end tests against the real moq-relay/moq-cli/ffmpeg
#   EC_FUZZTIME=5m scripts/test.sh    longer fuzzing
#   EC_SOAK=1 scripts/test.sh         also the long soak/fault modes (see RELIABILITY.md)
#
# The real peers are built once by scripts/install-peers.sh (cached outside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${EC_FUZZTIME:-10s}

step() { printf '\n=== %s\n' "$*"; }

step "static checks"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go vet -tags e2e ./e2e/...
go run honnef.co/go/tools/cmd/staticcheck@v0.6.1 -tags e2e ./...

step "unit tests"
# The S3 store's conformance tests run against a real S3-compatible server (SeaweedFS,
# built once and cached like the Rust peers).
EC_SEAWEEDFS_BIN=$(scripts/install-seaweedfs.sh | tail -n 1)
export EC_SEAWEEDFS_BIN
go test -count=1 ./...

step "fuzz smoke ($fuzztime per target)"
scripts/fuzz.sh "$fuzztime"

if [ -x scripts/check-nix.sh ]; then
  step "nix and systemd unit checks"
  scripts/check-nix.sh
fi

step "end-to-end tests against the real peers"
EC_PEERS_BIN=$(scripts/install-peers.sh | tail -n 1)
export EC_PEERS_BIN
go test -count=1 -tags e2e -timeout 40m ./e2e/...
