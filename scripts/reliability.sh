#!/usr/bin/env bash
# The reliability suite (RELIABILITY.md): fault-injection tests against the real
# moq-relay and moq-cli on loopback, the decoders' fuzz targets, and a summary of
# every measured figure (the test lines starting "RELIABILITY:").
#
#   scripts/reliability.sh          short mode, as run by scripts/test.sh (a few minutes)
#   scripts/reliability.sh --long   long mode (EC_SOAK=1): 100 kills, 20 relay restarts,
#                                   longer attacks, the 1h soak, 5 minutes per fuzz target
#
# Environment: EC_SOAK_DURATION (soak length, default 1h), EC_FUZZTIME (per fuzz target).
# Figures are also written to $EC_RELIABILITY_OUT if set.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  --long) export EC_SOAK=1; timeout=180m; fuzztime=${EC_FUZZTIME:-5m} ;;
  "") timeout=20m; fuzztime=${EC_FUZZTIME:-10s} ;;
  *) echo "usage: $0 [--long]" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

EC_PEERS_BIN=$(scripts/install-peers.sh | tail -n 1)
export EC_PEERS_BIN

echo "=== fault-injection tests (EC_SOAK=${EC_SOAK:-0})"
status=0
go test -count=1 -tags e2e -v -timeout "$timeout" -run '^TestReliability' ./e2e/ >"$work/e2e.log" 2>&1 || status=$?
grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|(FAIL|ok) )' "$work/e2e.log" | grep -v '=== RUN' || true
if [ "$status" != 0 ]; then
  echo "reliability tests failed; the log follows" >&2
  cat "$work/e2e.log" >&2
fi

echo "=== fuzz targets ($fuzztime each)"
scripts/fuzz.sh "$fuzztime" | tee "$work/fuzz.log"
awk '/^fuzz / { target = $2 " " $3 } /execs:/ { for (i = 1; i <= NF; i++) if ($i == "execs:") print "RELIABILITY: fuzz: " target ": " $(i+1) " executions in " substr($3, 1, length($3) - 1) }' \
  "$work/fuzz.log" >"$work/fuzz.figures"

echo "=== figures"
{
  sed -n 's/^.*RELIABILITY: //p' "$work/e2e.log"
  sed 's/^RELIABILITY: //' "$work/fuzz.figures"
  # Seed inputs each fuzz target replays in every plain `go test` run.
  echo "fuzz: committed seed inputs: $(find pkg -path '*testdata/fuzz/*' -type f | wc -l)"
} | tee "$work/figures"
if [ -n "${EC_RELIABILITY_OUT:-}" ]; then
  cp "$work/figures" "$EC_RELIABILITY_OUT"
fi
exit "$status"
