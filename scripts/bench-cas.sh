#!/usr/bin/env bash
# Benchmarks the CAS in one run (about 2 minutes on the 2-core reference VM;
# several times that with BASE_REV and --journal):
#  (a) durable 64 KiB objects/s of pkg/cas at concurrency 1, 8, 32, 64 and 128
#      against a naive single-writer loop (temp + write + fsync + rename + dir
#      fsync), on the same disk, as ratios, with the CPU time per object; per
#      filesystem the best concurrency (highest median rate), and at the end a
#      Markdown table of those for BENCHMARKS.md;
#  (b) `ec-node cas verify` throughput against `b3sum --check` on the same tree of
#      N_OBJECTS objects of 64 KiB-1 MiB (page cache warm: both are CPU-bound), and
#      that both catch the same flipped byte.
# Usage: scripts/bench-cas.sh [--journal]
#   --journal (root only) also runs (a) on a loop-mounted ext4 with a journal, and
#   on XFS if mkfs.xfs is installed, each a fresh sparse image file in $BENCH_DIR.
# Environment: BENCH_DIR (default $TMPDIR or /tmp) picks the disk; N_OBJECTS (2000);
# DURABLE_OBJECTS (2000 per variant); EC_NODE (a prebuilt ec-node binary);
# BASE_REV (a git revision, e.g. main): (a) also runs pkg/cas as of that revision,
# interleaved with this tree's (same benchmark harness), and prints this tree's
# rate and CPU time per object as ratios of it.
# The table in BENCHMARKS.md ("## CAS", (a')) comes from
#   BASE_REV=3c4aee8 scripts/bench-cas.sh --journal
set -euo pipefail
cd "$(dirname "$0")/.."

journal=false
case ${1:-} in
--journal) journal=true ;;
"") ;;
*) echo "usage: scripts/bench-cas.sh [--journal]" >&2; exit 64 ;;
esac
if $journal && [[ $(id -u) -ne 0 ]]; then
	echo "bench-cas: --journal mounts loop filesystems and needs root" >&2
	exit 77
fi

n_objects=${N_OBJECTS:-2000}
durable_objects=${DURABLE_OBJECTS:-2000}
tmp=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-cas.XXXXXX")
mounts=()
cleanup() {
	local m dev
	for m in "${mounts[@]}"; do
		dev=$(findmnt -n -o SOURCE "$m") && { umount "$m" || umount -l "$m"; } && losetup -d "$dev" 2>/dev/null || true
	done
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

command -v b3sum >/dev/null || { echo "bench-cas: b3sum not found (apt-get install b3sum)" >&2; exit 1; }

echo "# machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), b3sum $(b3sum --version | cut -d' ' -f2), disk: $(df -T "$tmp" | awk 'NR==2 {print $2 " on " $1}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- (a) durable writes ------------------------------------------------------
go test -c -o "$tmp/cas.test" ./pkg/cas/
builds=(cas.test)
if [[ -n ${BASE_REV:-} ]]; then
	mkdir "$tmp/base"
	git archive "$BASE_REV" | tar -x -C "$tmp/base"
	cp pkg/cas/bench_test.go "$tmp/base/pkg/cas/" # the same harness measures both
	(cd "$tmp/base" && go test -c -o "$tmp/cas-base.test" ./pkg/cas/)
	builds=(cas-base.test cas.test)
fi

# durable DIR LABEL NAME: three rounds of all variants (of every build), interleaved so
# that background disk load hits them alike; the median round of each is reported.
# Objects stay until all rounds are done (CAS_BENCH_KEEP, see pkg/cas/bench_test.go).
# Each filesystem's best concurrency goes to $tmp/summary.md, named NAME.
durable() {
	local dir=$1/durable label=$2 name=$3 build fstype
	mkdir "$dir"
	fstype=$(df -T "$dir" | awk 'NR==2 {print $2}')
	echo "# (a) durable writes on $label ($fstype), 64 KiB objects, $durable_objects per variant, median of 3 interleaved rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	for _ in 1 2 3; do
		for build in "${builds[@]}"; do
			CAS_BENCH_DIR=$dir CAS_BENCH_KEEP=1 "$tmp/$build" -test.run '^$' -test.bench Durable -test.benchtime "${durable_objects}x" |
				sed -n "s/^Benchmark/$build Benchmark/p"
		done
	done | tee "$tmp/durable.txt"
	awk -v fs="$name" -v summary="$tmp/summary.md" -v load="$(cut -d' ' -f1 /proc/loadavg)" '
		function median(s,   v, n, i, j, t) {
			n = split(s, v, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
			return v[int((n + 1) / 2)]
		}
		{
			for (i = 1; i <= NF; i++) {
				if ($(i+1) == "objects/s") rates[$1 " " $2] = rates[$1 " " $2] " " $i
				if ($(i+1) == "cpu-us/object") cpus[$1 " " $2] = cpus[$1 " " $2] " " $i
			}
		}
		END {
			for (b in rates) if (b ~ /^cas.test BenchmarkNaiveDurable/) naive = median(rates[b])
			if (!naive) { print "bench-cas: no naive rate" > "/dev/stderr"; exit 1 }
			for (b in rates) if (b ~ /^cas.test BenchmarkNaiveDurable/) naivecpu = median(cpus[b])
			printf "naive single writer        %5.0f objects/s  %4.0f CPU us/object\n", naive, naivecpu
			best = 0; basebest = 0
			for (c = 1; c <= 128; c *= 2) for (b in rates) if (b ~ "^cas.test .*conc=" c "-") {
				m = median(rates[b]); u = median(cpus[b])
				printf "pkg/cas conc=%-3d           %5.0f objects/s  %4.0f CPU us/object = %.1fx naive   (rounds:%s)\n", c, m, u, m / naive, rates[b]
				if (m > best) { best = m; bestc = c; bestu = u }
				base = b; sub(/^cas.test/, "cas-base.test", base)
				if (base in rates) {
					o = median(rates[base]); ou = median(cpus[base])
					printf "  before (BASE_REV) conc=%-3d %5.0f objects/s  %4.0f CPU us/object; after/before: rate %.2fx, CPU %.2fx   (rounds:%s)\n", c, o, ou, m / o, u / ou, rates[base]
					if (o > basebest) { basebest = o; basec = c; baseu = ou }
				}
			}
			printf "best: pkg/cas conc=%d, %.0f objects/s, %.0f CPU us/object", bestc, best, bestu
			row = sprintf("| %s | %d | %.0f | %.0f | %.1fx | %.0f |", fs, bestc, best, bestu, best / naive, naive)
			if (basebest) {
				printf "; before (BASE_REV): conc=%d, %.0f objects/s, %.0f CPU us/object: rate %.2fx, CPU %.2fx", basec, basebest, baseu, best / basebest, bestu / baseu
				row = row sprintf(" %d | %.0f | %.0f | %.2fx | %.2fx |", basec, basebest, baseu, best / basebest, bestu / baseu)
			}
			printf "\n"
			print row " " load " |" >> summary
		}' "$tmp/durable.txt"
	rm -rf "$dir"
}

# journal DIR: whether DIR's filesystem journals its metadata, as far as known
# (an ext4 journal shows in /proc/fs/jbd2).
journal() {
	local dev
	dev=$(findmnt -n -o SOURCE -T "$1") || return 0
	case $(findmnt -n -o FSTYPE -T "$1") in
	ext[34]) compgen -G "/proc/fs/jbd2/${dev##*/}-*" >/dev/null && echo "with a journal" || echo "without a journal" ;;
	xfs) echo "with a journal" ;;
	esac
}
durable "$tmp" "${BENCH_DIR:-${TMPDIR:-/tmp}}" "$(df -T "$tmp" | awk 'NR==2 {print $2}') $(journal "$tmp") (${BENCH_DIR:-${TMPDIR:-/tmp}})"
if $journal; then
	fstypes=(ext4)
	command -v mkfs.xfs >/dev/null && fstypes+=(xfs) || echo "# (mkfs.xfs not installed: no XFS run)"
	for fstype in "${fstypes[@]}"; do
		img=$tmp/$fstype.img mnt=$tmp/$fstype
		truncate -s $((durable_objects * 36 * 64 / 1024 * 3 / 2 + 1024))M "$img" # sparse; the rounds keep 3 x 2 x 6 x DURABLE_OBJECTS x 64 KiB
		case $fstype in
		ext4) mkfs.ext4 -q -F -O has_journal "$img" ;;
		xfs) mkfs.xfs -q -f "$img" ;;
		esac
		mkdir "$mnt"
		# Direct I/O: the image's writes skip the page cache of the disk below,
		# so each flush of the filesystem on top reaches the disk once.
		dev=$(losetup --find --show --direct-io=on "$img")
		mount "$dev" "$mnt" || { losetup -d "$dev"; exit 1; }
		mounts+=("$mnt")
		durable "$mnt" "loop-mounted $fstype with a journal, image on the disk above" "$fstype with a journal (loop image)"
	done
fi
echo "# load average at the end of (a): $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# (a) summary: each filesystem's best pkg/cas concurrency, medians of 3 rounds"
if [[ -n ${BASE_REV:-} ]]; then
	echo "| filesystem | conc | objects/s | CPU µs/object | vs naive | naive objects/s | before ($BASE_REV) conc | before objects/s | before CPU µs/object | after/before rate | after/before CPU | load at end |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
else
	echo "| filesystem | conc | objects/s | CPU µs/object | vs naive | naive objects/s | load at end |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
fi
cat "$tmp/summary.md"

# --- (b) verify vs b3sum --check -----------------------------------------------
if [[ -n ${EC_NODE:-} ]]; then
	verify=("$EC_NODE" cas verify)
elif go build -o "$tmp/ec-node" ./cmd/ec-node 2>"$tmp/build.log"; then
	verify=("$tmp/ec-node" cas verify)
else
	echo "bench-cas: cmd/ec-node does not build (see below); set EC_NODE to a built binary" >&2
	cat "$tmp/build.log" >&2
	exit 1
fi

root=$tmp/cas
in=$tmp/in
mkdir -p "$in" "$root/objects/blake3"
RANDOM=42
for ((i = 0; i < n_objects; i++)); do
	size=$((65536 + (RANDOM * 32768 + RANDOM) % (1048576 - 65536 + 1)))
	head -c "$size" /dev/urandom >"$in/$i"
done
# Place each file at its layout path and write the b3sum check file for the tree.
(cd "$in" && b3sum -- *) | while read -r hash name; do
	shard=$root/objects/blake3/${hash:0:2}
	[[ -d $shard ]] || mkdir "$shard"
	mv "$in/$name" "$shard/$hash.bin"
	echo "$hash  objects/blake3/${hash:0:2}/$hash.bin"
done >"$tmp/tree.b3"
bytes=$(du -sb "$root/objects" | cut -f1)
echo "# (b) verify: $n_objects objects, $((bytes >> 20)) MiB, page cache warm, best of 3"

seconds() { # runs "$@" quietly, prints elapsed seconds; fails if the command fails
	local start end
	start=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	end=$(date +%s.%N)
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}
b3check() { (cd "$root" && b3sum --check --quiet "$tmp/tree.b3"); }
ecverify() { "${verify[@]}" --root "$root" --progress never; }

b3check >/dev/null # warm the page cache
best_b3=999999 best_ec=999999
for _ in 1 2 3; do
	t=$(seconds ecverify); best_ec=$(awk -v a="$t" -v b="$best_ec" 'BEGIN { print (a < b ? a : b) }')
	t=$(seconds b3check); best_b3=$(awk -v a="$t" -v b="$best_b3" 'BEGIN { print (a < b ? a : b) }')
done
awk -v b="$bytes" -v n="$n_objects" -v ec="$best_ec" -v b3="$best_b3" 'BEGIN {
	printf "ec-node cas verify: %.3f s  %6.0f MiB/s  %6.0f objects/s\n", ec, b / ec / 1048576, n / ec
	printf "b3sum --check:      %.3f s  %6.0f MiB/s  %6.0f objects/s\n", b3, b / b3 / 1048576, n / b3
	printf "verify speed = %.2fx b3sum --check\n", b3 / ec
}'

# Correctness parity: one flipped byte must fail both.
victim=$(head -1 "$tmp/tree.b3" | cut -d' ' -f3)
chmod u+w "$root/$victim"
printf '\xff' | dd of="$root/$victim" bs=1 seek=1000 conv=notrunc status=none
ec_status=0 b3_status=0
ecverify >"$tmp/findings.txt" 2>/dev/null || ec_status=$?
b3check >/dev/null 2>&1 || b3_status=$?
echo "flipped byte in $victim: ec-node exit $ec_status ($(cut -f1 "$tmp/findings.txt" | sort | uniq -c | xargs)), b3sum exit $b3_status"
if [[ $ec_status -ne 1 || $b3_status -eq 0 ]] || ! grep -q "^corrupt	$victim	" "$tmp/findings.txt"; then
	echo "bench-cas: corruption not detected by both" >&2
	exit 1
fi
