#!/usr/bin/env bash
# Benchmarks archive-serve's time to first byte of a segment over loopback HTTP
# (pkg/serve BenchmarkSegmentTTFB): N_OBJECTS distinct objects per size, each
# requested once unverified (cold: read whole and BLAKE3-re-hashed before the
# first byte) and once more (cached: served from its file), p50/p99 per pass.
# Objects are freshly written, so in the page cache: this is archive-serve's own
# cost, not the disk's. Environment: BENCH_DIR (default $TMPDIR or /tmp) picks the
# disk; N_OBJECTS (2000); SIZES (65536 262144 1048576 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

n_objects=${N_OBJECTS:-2000}
tmp=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-serve.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "# machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), disk: $(df -T "$tmp" | awk 'NR==2 {print $2 " on " $1}'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -c -o "$tmp/serve.test" ./pkg/serve/
for size in ${SIZES:-65536 262144 1048576}; do
	echo "# $n_objects objects of $size bytes"
	CAS_BENCH_DIR=$tmp BENCH_OBJECT_SIZE=$size "$tmp/serve.test" -test.run '^$' -test.bench SegmentTTFB -test.benchtime "${n_objects}x" | grep '^Benchmark'
done
