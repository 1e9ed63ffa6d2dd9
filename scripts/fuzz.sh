#!/usr/bin/env bash
# Runs every native Go fuzz target for a short budget each (default 10s).
# The seed corpora are committed under each package's testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-10s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $target ($budget)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" "$pkg" >/tmp/ec-fuzz.log 2>&1 || { cat /tmp/ec-fuzz.log; exit 1; }
    grep -E 'execs:' /tmp/ec-fuzz.log | tail -n 1
  done
done
