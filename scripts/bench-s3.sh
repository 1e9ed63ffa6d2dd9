#!/usr/bin/env bash
# Benchmarks puts into the CAS in one run: a local root (durable, fsynced) against
# a bucket on a real SeaweedFS S3 gateway on loopback, both on this machine's disk,
# at 64 KiB and 1 MiB objects, 1 and 16 writers. Prints objects/s and MB/s.
# Environment: EC_SEAWEEDFS_BIN (else scripts/install-seaweedfs.sh builds weed);
# BENCH_OBJECTS (objects per variant, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
EC_SEAWEEDFS_BIN=${EC_SEAWEEDFS_BIN:-$(scripts/install-seaweedfs.sh | tail -n1)}
export EC_SEAWEEDFS_BIN
echo "# machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), disk: $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2 " on " $1}')"
go test -run '^$' -bench '^BenchmarkPut$' -benchtime "${BENCH_OBJECTS:-300}x" ./pkg/s3cas/ |
	awk '/^BenchmarkPut/ {
		for (i = 1; i <= NF; i++) { if ($(i+1) == "MB/s") mbs = $i; if ($(i+1) == "objects/s") ops = $i }
		name = $1; sub(/^BenchmarkPut\//, "", name); sub(/-[0-9]+$/, "", name)
		printf "%-34s %9.0f objects/s %8.1f MB/s\n", name, ops, mbs
	}'
