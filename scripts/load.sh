#!/usr/bin/env bash
# Load harness: N live broadcasts into the REAL moq-relay on loopback, all archived
# by ONE `ec-node archive-auto --mode inprocess` that follows the relay's
# announcements, with N swept upward until loss begins, the machine saturates,
# or --max-n. Results and method: BENCHMARKS.md ("Load harness").
#
#   scripts/load.sh [--max-n N] [--start N] [--step S] [--duration D] [--warmup W] [--refs R] [--clip distinct|shared] [--profile DIR] [--compare-rev REV]
#
#   --max-n N     largest N (100)
#   --start N     first N (5)
#   --step S      add S to N after each step; 0 doubles N (0: 5, 10, 20, 40, 80, 100)
#   --duration D  measured window per N, seconds (30)
#   --warmup W    seconds from the archiver's start to the window (12)
#   --refs R      broadcasts also exported by the Rust reference subscriber (2; at least 1)
#   --clip MODE   distinct (default): broadcast i replays its own copy of the
#                 recorded clip, each CMAF group tagged with a 16-byte free box
#                 carrying i (benchrelay derive), so that every group is a new
#                 object in the archiver's store; shared: all replay the one
#                 clip, and after the first broadcast every group is a dedup hit
#   --profile DIR  write a CPU profile of the archiver over each window to
#                 DIR/archiver-nN.pprof (its --pprof-listen) and its top costs to stderr
#   --compare-rev REV  also run, in each step, a second archive-auto built from git
#                 revision REV on the same broadcasts (its own store), and print
#                 both archivers' CPU side by side after the table: before/after
#                 under the same load (the relay then serves both, so take relay
#                 figures from a run without it)
#
# Publishers: a clip of (warm-up + window + 10) s (BENCH_SIZE 1280x720 H.264 at BENCH_BITRATE 4M, 1 s
# GOPs, + AAC) is encoded, published once in real time (ffmpeg -re | moq import
# fmp4) and archived by wt-archive; then each of the N broadcasts is one
# `ec-node replay --loop --speed 1` of that archive (--clip distinct: of its own
# tagged copy, about 26 MB of disk per broadcast at 4 Mbit/s) under its own
# name, so no publisher encodes anything. Their CPU is measured like everything else. The
# Rust reference (`moq export fmp4`, piped into `benchrelay watch`) subscribes to
# the first --refs broadcasts; it stops with "frame timestamp is below the live
# edge" where the replay loops, hence a clip longer than warm-up plus window.
#
# Per N (fresh relay, fresh store): warm-up, CPU and RSS snapshots of every
# process around the window (internal/benchrelay snap: CPU, RSS, drops on its UDP
# sockets), then `benchrelay report`
# over the archiver's debug log (group durable: receive-to-durable latency), its
# manifests (gap records, sequence holes) and the reference's fragments; after
# the window, `cas verify`, and the storage baseline over the objects this step
# archived: b3sum of each, cp, and an fsync of each copy (`sync FILE...`).
# Loss is a gap record of a media track written in the window, a sequence
# number missing between a media track's groups durable in the window, or a
# broadcast with nothing durable in it. Skipped catalog.json groups are counted
# apart: a catalog superseded milliseconds later (the replay republishes the
# clip's catalogs at each loop) is skipped by the relay by design. A crashed or exited process fails the step (exit 1).
#
# Prints a Markdown table on stdout; the run directory (BENCH_DIR or $TMPDIR)
# keeps per-N reports only with BENCH_KEEP=1. EC_PEERS_BIN skips
# scripts/install-peers.sh. Exit 0 when the sweep ran (loss is a result), 1 when
# a process crashed or a check failed, 2 on bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

max_n=100 start=5 step=0 window=30 warmup=12 refs=2 profile= compare= clip_mode=distinct
bitrate=${BENCH_BITRATE:-4M}
size=${BENCH_SIZE:-1280x720}
port=${BENCH_PORT:-4481}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; }
while (($#)); do
	case $1 in
	--max-n | --start | --step | --duration | --warmup | --refs)
		[[ ${2:-} =~ ^[0-9]+$ ]] || {
			echo "load: $1 wants a whole number; see scripts/load.sh --help" >&2
			exit 2
		}
		case $1 in
		--max-n) max_n=$2 ;; --start) start=$2 ;; --step) step=$2 ;;
		--duration) window=$2 ;; --warmup) warmup=$2 ;; --refs) refs=$2 ;;
		esac
		shift 2
		;;
	--clip)
		[[ ${2:-} == distinct || ${2:-} == shared ]] || {
			echo "load: --clip wants distinct or shared; see scripts/load.sh --help" >&2
			exit 2
		}
		clip_mode=$2
		shift 2
		;;
	--compare-rev)
		[[ -n ${2:-} ]] && git rev-parse --verify -q "$2^{commit}" >/dev/null || {
			echo "load: --compare-rev wants a git revision; see scripts/load.sh --help" >&2
			exit 2
		}
		compare=$(git rev-parse --short "$2^{commit}")
		shift 2
		;;
	--profile)
		[[ -n ${2:-} ]] || {
			echo "load: --profile wants a directory; see scripts/load.sh --help" >&2
			exit 2
		}
		mkdir -p "$2" && profile=$(cd "$2" && pwd)
		shift 2
		;;
	-h | --help) usage && exit 0 ;;
	*)
		echo "load: unknown argument $1; see scripts/load.sh --help" >&2
		exit 2
		;;
	esac
done
((start >= 1 && max_n >= start && window >= 5 && refs >= 1)) || {
	echo "load: want 1 <= --start <= --max-n, --duration >= 5 and --refs >= 1" >&2
	exit 2
}

# The reference subscriber stops at the replay's loop boundary ("frame timestamp
# is below the live edge"), so the clip outlasts the warm-up and the window.
clip=$((warmup + window + 10))
dir=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/load.XXXXXX")
pids=()
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ ${BENCH_KEEP:-} == 1 ]]; then echo "load: run directory kept: $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
fail() {
	echo "load: $*" >&2
	exit 1
}
for tool in curl jq ffmpeg b3sum; do command -v "$tool" >/dev/null || fail "$tool not found"; done

bin=${EC_PEERS_BIN:-$(scripts/install-peers.sh | tail -n 1)}
go build -o "$dir/ec-node" ./cmd/ec-node
go build -o "$dir/benchrelay" ./internal/benchrelay
ec=$dir/ec-node
if [[ -n $compare ]]; then
	mkdir "$dir/base-src"
	git archive "$compare" | tar -x -C "$dir/base-src"
	(cd "$dir/base-src" && go build -o "$dir/ec-node-base" ./cmd/ec-node)
fi

# start_relay PORT LOGFILE: sets relay (PID), fp and url.
start_relay() {
	"$bin/moq-relay" --listen "127.0.0.1:$1" --listen-tls-generate localhost \
		--web-http-listen "127.0.0.1:$1" --auth-public '**' >"$2" 2>&1 &
	relay=$!
	pids+=("$relay")
	fp=
	for _ in $(seq 50); do
		fp=$(curl -fsS "http://127.0.0.1:$1/certificate.sha256" 2>/dev/null || true)
		[[ -n $fp ]] && break
		sleep 0.2
	done
	[[ -n $fp ]] || fail "relay did not start; see $2"
	url="https://127.0.0.1:$1/anon"
}

# stop PID...: SIGTERM, then wait; a process that fails to stop cleanly is reported.
stop() {
	local p
	kill -TERM "$@" 2>/dev/null || true
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

echo "load: encoding a ${clip} s ${size} clip at ${bitrate}bit/s and archiving it (the replay source)" >&2
src=$dir/src
mkdir -p "$src"
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i "testsrc=size=$size:rate=30:duration=$clip" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$clip" \
	-vf noise=alls=12:allf=t -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p \
	-b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" -g 30 -keyint_min 30 -sc_threshold 0 \
	-c:a aac -b:a 128k -f mp4 "$src/clip.mp4"
# record: publish the clip once in real time and archive it into $src.
record() {
	rm -rf "$src/cas" "$src/manifests"
	start_relay "$port" "$src/relay.log"
	"$ec" wt-archive --url "$url" --name src.hang --tls-fingerprint "$fp" \
		--output-dir "$src/cas" --manifest-dir "$src/manifests" 2>"$src/archive.log" &
	archiver=$!
	pids+=("$archiver")
	# A one-frame fragment duration, not frag_every_frame: see scripts/bench-replay.sh.
	ffmpeg -hide_banner -nostdin -loglevel error -re -i "$src/clip.mp4" -c copy \
		-f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer -frag_duration 33333 - 2>"$src/ffmpeg.log" |
		"$bin/moq" --connect "$url" --connect-tls-fingerprint "$fp" --broadcast src.hang import fmp4 >"$src/import.log" 2>&1 ||
		fail "publishing the clip failed; see $src/import.log"
	sleep 2
	stop "$archiver"
	stop "$relay"
}

# A group lost while recording would be replayed as a gap in every broadcast and
# counted as loss, so the recording is repeated until no track has a gap record
# before its last group (those at its end are the stop).
for attempt in 1 2 3; do
	record
	lost=$(cat "$src"/manifests/src.hang/*.jsonl | jq -s '
		(map(select(.kind == "group")) | group_by(.track) | map({key: .[0].track, value: (map(.group) | max)}) | from_entries) as $last |
		map(select(.kind == "gap" and .last < ($last[.track] // 0))) | length')
	((lost == 0)) && break
	echo "load: recording $attempt has $lost gap records mid-clip (a loaded machine?); recording again" >&2
	((attempt < 3)) || fail "three recordings of the clip lost groups; see $src/archive.log"
done
clip_groups=$(cat "$src"/manifests/src.hang/*.jsonl | jq -s '[.[] | select(.kind == "group" and .track != "catalog.json")] | length')
((clip_groups > 0)) || fail "the clip's archive holds no media group; see $src/archive.log"

# derive N: with --clip distinct, makes sure copies 0..N-1 of the clip exist
# (src-I.hang); sets source to the name broadcast I replays, with %d for I.
derived=0
derive() {
	source=src.hang
	[[ $clip_mode == distinct ]] || return 0
	source=src-%d.hang
	((derived < $1)) || return 0
	"$dir/benchrelay" derive -store "$src/cas" -manifests "$src/manifests" -from src.hang -name "$source" \
		-first "$derived" -n $(($1 - derived)) || fail "deriving copies of the clip failed"
	derived=$1
}

# measure N: one step of the sweep; writes $dir/n$N/summary.json.
measure() {
	local n=$1 run=$dir/n$1 i name role_args auto mport pport prof= base=
	local replays=() exports=() step_pids=() source
	derive "$n"
	mkdir -p "$run/logs" "$run/ours/auto"
	start_relay $((port + n)) "$run/logs/relay.log"
	step_pids+=("$relay")
	for ((i = 0; i < n; i++)); do
		"$ec" replay --url "$url" --tls-fingerprint "$fp" --name "load-$i.hang" --from-broadcast "$(printf "$source" "$i")" \
			--output-dir "$src/cas" --manifest-dir "$src/manifests" --loop --speed 1 2>"$run/logs/replay$i.log" &
		pids+=($!) replays+=($!)
	done
	sleep 1
	mport=$((port + 1000 + n)) pport=$((port + 2000 + n))
	"$ec" archive-auto --mode inprocess --directory "" --relay-announce "$url" --tls-fingerprint "$fp" \
		--output-dir "$run/ours/auto/cas" --manifest-dir "$run/ours/auto/manifests" --status-dir "$run/status" \
		--poll-interval 1s --log-level debug --log-format json --metrics-listen "127.0.0.1:$mport" \
		--pprof-listen "127.0.0.1:$pport" 2>"$run/ours/auto/archiver.log" &
	auto=$!
	pids+=("$auto")
	if [[ -n $compare ]]; then
		mkdir -p "$run/base"
		"$dir/ec-node-base" archive-auto --mode inprocess --directory "" --relay-announce "$url" --tls-fingerprint "$fp" \
			--output-dir "$run/base/cas" --manifest-dir "$run/base/manifests" --status-dir "$run/base/status" \
			--poll-interval 1s --log-level debug --log-format json --metrics-listen "127.0.0.1:$((port + 3000 + n))" \
			2>"$run/base/archiver.log" &
		base=$!
		pids+=("$base")
	fi
	for ((i = 0; i < n && i < refs; i++)); do
		name=load-$i.hang
		mkdir -p "$run/ref/$name"
		mkfifo "$run/ref/$name/fifo"
		"$dir/benchrelay" watch -label "$name" <"$run/ref/$name/fifo" >"$run/ref/$name/events.jsonl" 2>"$run/ref/$name/watch.log" &
		pids+=($!)
		"$bin/moq" --connect "$url" --connect-tls-fingerprint "$fp" export --broadcast "$name" fmp4 \
			>"$run/ref/$name/fifo" 2>"$run/ref/$name/export.log" &
		pids+=($!) exports+=($!)
	done
	sleep "$warmup"
	role_args=("ours=$auto" "relay=$relay")
	[[ -z $base ]] || role_args+=("base=$base")
	for i in "${replays[@]}"; do role_args+=("publishers=$i"); done
	for i in "${exports[@]}"; do role_args+=("ref=$i"); done
	"$dir/benchrelay" snap "${role_args[@]}" >"$run/snapshots.jsonl" || fail "N=$n: a process died during the warm-up; logs in $run (BENCH_KEEP=1)"
	if [[ -n $profile ]]; then
		curl -fsS -o "$profile/archiver-n$n.pprof" "http://127.0.0.1:$pport/debug/pprof/profile?seconds=$window" &
		prof=$!
	fi
	sleep "$window"
	"$dir/benchrelay" snap "${role_args[@]}" >>"$run/snapshots.jsonl" || fail "N=$n: a process died during the window; logs in $run (BENCH_KEEP=1)"
	curl -fsS "http://127.0.0.1:$mport/metrics" >"$run/metrics.txt" || fail "N=$n: no metrics from archive-auto"
	if [[ -n $prof ]]; then
		wait "$prof" || fail "N=$n: no CPU profile from archive-auto"
		echo "load: N=$n: the archiver's top costs ($profile/archiver-n$n.pprof):" >&2
		go tool pprof -top -nodecount 25 "$profile/archiver-n$n.pprof" 2>/dev/null | sed -n '4,30p' >&2
	fi

	kill -TERM "$auto"
	wait "$auto" || fail "N=$n: archive-auto exited with $? on SIGTERM; see $run/ours/auto/archiver.log"
	if [[ -n $base ]]; then
		kill -TERM "$base"
		wait "$base" || fail "N=$n: archive-auto of $compare exited with $? on SIGTERM; see $run/base/archiver.log"
	fi
	stop "${exports[@]}" "${replays[@]}"
	stop "${step_pids[@]}"
	"$ec" cas verify --root "$run/ours/auto/cas" --manifest-dir "$run/ours/auto/manifests" >"$run/verify.log" 2>&1 ||
		fail "N=$n: cas verify failed: $(tail -n 5 "$run/verify.log")"
	"$dir/benchrelay" report -dir "$run" >"$run/report.md"
	"$dir/benchrelay" report -dir "$run" -json >"$run/summary.json"

	# Storage baseline over this step's objects (hot in the page cache, as the
	# archiver's groups are in memory): hash, copy, fsync each copy.
	local objects mb times
	objects=$(find "$run/ours/auto/cas" -type f -not -name '*.tmp*' | wc -l)
	mb=$(du -sm --apparent-size "$run/ours/auto/cas" | cut -f1)
	times=$({
		TIMEFORMAT='%R %U %S'
		time {
			find "$run/ours/auto/cas" -type f -print0 | xargs -0 b3sum >/dev/null
			cp -r "$run/ours/auto/cas" "$run/copy"
			find "$run/copy" -type f -print0 | xargs -0 sync
		}
	} 2>&1)
	rm -rf "$run/copy"
	jq -c --argjson n "$n" --argjson objects "$objects" --argjson mb "$mb" --arg times "$times" \
		--arg mgaps "$(awk '/^ec_gaps_total/ {s += $NF} END {print s + 0}' "$run/metrics.txt")" \
		'. + {n: $n, metrics_gaps: ($mgaps | tonumber), baseline: ($times | split(" ") | map(tonumber) |
			{objects: $objects, mb: $mb, wall_s: .[0], cpu_s: (.[1] + .[2])})}' "$run/summary.json" >"$run/row.json"
	cat "$run/row.json" >>"$dir/rows.jsonl"
}

row() {
	jq -r '
		def f(x): (x * 10 | round) / 10;
		(.gaps | with_entries(select(.key | startswith("catalog ") | not)) | map(.) | add // 0) as $gaps |
		(.gaps | with_entries(select(.key | startswith("catalog "))) | map(.) | add // 0) as $catalog |
		"| \(.n) | \(f(.groups_per_s)) | \(f(.mb_per_s)) | \($gaps) gap records, \(.holes) holes, \(.n - .broadcasts) silent (\($catalog) catalog skips) | " +
		"\(f(.cpu_percent.ours)) (\(f(.cpu_percent.ours / .n)) per bc) | \(f(.cpu_percent.relay)) | " +
		"\(f(.cpu_percent.publishers)) (\(f(.cpu_percent.publishers / .n)) per bc) | " +
		"\(f(.rss_mb.ours)) / \(f(.rss_mb.relay)) / \(f(.rss_mb.publishers / .n)) | " +
		"\(f(.durable_p50_ms)) / \(f(.durable_p99_ms)) / \(f(.durable_max_ms)) | " +
		"\(f(.ours_cpu_ms_per_mbit)) / \(f(.ref_cpu_ms_per_mbit)) | " +
		"\(f(.baseline.mb / .baseline.wall_s)) MB/s, \(f(.baseline.cpu_s * 1000 / .baseline.mb)) ms/MB vs ours \(f(.cpu_percent.ours * 10 / .mb_per_s)) | " +
		"\(f(.machine_cpu_percent)) (\(f(.machine_cpu_percent - (.cpu_percent | map(.) | add)))) | \(.udp_rcvbuf_errors) (\(.udp_drops.relay // 0) / \(.udp_drops.ours // 0) / \(.udp_drops.publishers // 0)) | \(.loadavg_start) → \(.loadavg_end) |"'
}

echo "load: clip ${clip} s, ${clip_groups} media groups; sweeping N from $start to $max_n (window ${window} s, warm-up ${warmup} s)" >&2
echo "## Load run $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem/ {print $2}') GiB," \
	"Linux $(uname -r), $(go version | cut -d' ' -f3), moq-relay $("$bin/moq-relay" --version | awk '{print $2}'), moq-cli $("$bin/moq" --version | awk '{print $2}');" \
	"store on $(df -T "$dir" | awk 'NR==2 {print $2 " " $1}')."
if [[ $clip_mode == distinct ]]; then
	clip_text="its own copy of a ${clip} s ${size} clip (each CMAF group tagged with a free box carrying the broadcast's index: every group a new object)"
else
	clip_text="one shared ${clip} s ${size} clip (after the first broadcast every group is a dedup hit)"
fi
echo "Clip mode: $clip_mode. Each broadcast: \`ec-node replay --loop --speed 1\` of $clip_text: H.264 ${bitrate}bit/s, 1 s GOPs, AAC 128k; $clip_groups media groups." \
	"One \`ec-node archive-auto --mode inprocess\` archives all; $refs of them also go to \`moq export fmp4\`. Window ${window} s after ${warmup} s."
echo
echo "| N | groups/s | MB/s | lost | archiver CPU % | relay CPU % | publishers CPU % | RSS MB archiver / relay / publisher | last byte → durable ms p50 / p99 / max | CPU ms per Mbit ours / moq export | baseline b3sum+cp+fsync | machine CPU % (not ours) | UDP receive-buffer drops (relay / archiver / publishers) | load avg |"
echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"
n=$start
while :; do
	echo "load: N=$n" >&2
	measure "$n"
	row <"$dir/n$n/row.json"
	lost=$(jq '(.gaps | with_entries(select(.key | startswith("catalog ") | not)) | map(.) | add // 0) + .holes + (.n - .broadcasts)' "$dir/n$n/row.json")
	busy=$(jq --argjson cores "$(nproc)" '.cpu_percent | to_entries | map(.value) | add >= 90 * $cores' "$dir/n$n/row.json")
	if ((lost > 0)); then
		echo
		echo "Loss begins at N=$n: $(jq -c '{gaps, holes, silent: (.n - .broadcasts)}' "$dir/n$n/row.json")."
		break
	fi
	if [[ $busy == true ]]; then
		echo
		echo "Saturated at N=$n: the measured processes used at least 90 % of the $(nproc) cores."
		break
	fi
	((n < max_n)) || break
	if ((step > 0)); then n=$((n + step)); else n=$((n * 2)); fi
	((n <= max_n)) || n=$max_n
done
if [[ -n $compare ]]; then
	echo
	echo "Archiver CPU side by side in the same steps, this tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ', modified')) vs $compare, % of one core:"
	echo
	echo "| N | this tree | $compare | ratio |"
	echo "| ---: | ---: | ---: | ---: |"
	jq -r 'def f(x): (x * 10 | round) / 10;
		"| \(.n) | \(f(.cpu_percent.ours)) (\(f(.cpu_percent.ours / .n)) per bc) | \(f(.cpu_percent.base)) (\(f(.cpu_percent.base / .n)) per bc) | \((.cpu_percent.ours / .cpu_percent.base * 100 | round) / 100) |"' "$dir/rows.jsonl"
fi
