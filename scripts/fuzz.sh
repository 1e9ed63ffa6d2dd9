#!/usr/bin/env bash
# Runs every native Go fuzz target for a short budget each (default 10s).
# The seed corpora are committed under each package's testdata/fuzz/.
#
# A run that ends with the Go fuzzer's own "context deadline exceeded" at the
# budget's end, without a failing input, is a known toolchain flake (the deadline
# hits a worker mid-input); it is run once more. A real failure
# prints "Failing input written to ..." and fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "$budget" "$1" >"$log" 2>&1; }

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $target ($budget)"
    if ! fuzz "$pkg" "$target"; then
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "fuzz: deadline flake of the Go fuzzer, running $target once more"
        fuzz "$pkg" "$target" || { cat "$log"; exit 1; }
      else
        cat "$log"
        exit 1
      fi
    fi
    grep -E 'execs:' "$log" | tail -n 1
  done
done
