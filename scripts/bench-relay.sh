#!/usr/bin/env bash
# Benchmarks live archiving through the REAL moq-relay on loopback, in one run:
# BROADCASTS live broadcasts (H.264 720p at ~8 Mbit/s + AAC), each archived by its
# own `ec-node wt-archive` (CAS + manifests, fsynced) and, at the same time from
# the same relay, exported by the Rust reference subscriber `moq export fmp4` into
# a pipe. Over a window after a warm-up it reports, for both: bytes/s, groups/s,
# CPU (user+sys from /proc/PID/stat) per Mbit, the ratios ours/reference, and the
# per-group latencies (see internal/benchrelay). About a minute by default.
#
#   scripts/bench-relay.sh
#
# Environment: BENCH_BROADCASTS (4), BENCH_SECONDS (45, the measured window),
# BENCH_WARMUP (8), BENCH_BITRATE (8M, video), BENCH_SIZE (1280x720), BENCH_PORT
# (4471), BENCH_DIR (where the CAS goes; default $TMPDIR or /tmp), BENCH_KEEP=1
# keeps the run directory.
#
# The video is encoded once into a 10 s clip and replayed in a loop (-c copy),
# so that four publishers do not spend the two cores on x264; the audio is a
# live AAC sine (looping copied AAC repeats decode times, which moq import rejects).
set -euo pipefail
cd "$(dirname "$0")/.."

broadcasts=${BENCH_BROADCASTS:-4}
window=${BENCH_SECONDS:-45}
warmup=${BENCH_WARMUP:-8}
bitrate=${BENCH_BITRATE:-8M}
size=${BENCH_SIZE:-1280x720}
port=${BENCH_PORT:-4471}
dir=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-relay.XXXXXX")

pids=()
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ ${BENCH_KEEP:-} == 1 ]]; then echo "bench-relay: run directory kept: $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
fail() { echo "bench-relay: $*" >&2; exit 1; }
for tool in curl jq ffmpeg; do command -v "$tool" >/dev/null || fail "$tool not found"; done

bin=$(scripts/install-peers.sh | tail -n 1)
go build -o "$dir/ec-node" ./cmd/ec-node
go build -o "$dir/benchrelay" ./internal/benchrelay
mkdir -p "$dir/logs"

echo "bench-relay: encoding a 10 s ${size} clip at ${bitrate}bit/s" >&2
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i "testsrc=size=$size:rate=30:duration=10" \
	-vf noise=alls=12:allf=t -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p \
	-b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" -g 30 -keyint_min 30 -sc_threshold 0 -an \
	-f mp4 "$dir/clip.mp4"

"$bin/moq-relay" --listen "127.0.0.1:$port" --listen-tls-generate localhost \
	--web-http-listen "127.0.0.1:$port" --auth-public '**' >"$dir/logs/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
fp=
for _ in $(seq 50); do
	fp=$(curl -fsS "http://127.0.0.1:$port/certificate.sha256" 2>/dev/null || true)
	[[ -n $fp ]] && break
	sleep 0.2
done
[[ -n $fp ]] || fail "relay did not start; see $dir/logs/relay.log"
url="https://127.0.0.1:$port/anon"

names=()
publishers=() encoders=() ours=() refs=()
for ((i = 0; i < broadcasts; i++)); do
	name=bench$i.hang
	names+=("$name")
	mkfifo "$dir/pub$i.fifo"
	"$bin/moq" --connect "$url" --connect-tls-fingerprint "$fp" --broadcast "$name" import fmp4 \
		<"$dir/pub$i.fifo" >"$dir/logs/publisher$i.log" 2>&1 &
	pids+=($!) publishers+=($!)
	ffmpeg -hide_banner -nostdin -loglevel warning -re -stream_loop -1 -i "$dir/clip.mp4" \
		-re -f lavfi -i sine=frequency=440:sample_rate=48000 -map 0:v -map 1:a -c:v copy -c:a aac -b:a 128k \
		-f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame - \
		>"$dir/pub$i.fifo" 2>"$dir/logs/ffmpeg$i.log" &
	pids+=($!) encoders+=($!)
done
sleep 2 # let the relay announce the broadcasts

for name in "${names[@]}"; do
	o=$dir/ours/$name r=$dir/ref/$name
	mkdir -p "$o" "$r"
	"$dir/ec-node" wt-archive --log-level debug --log-format json --url "$url" --name "$name" \
		--tls-fingerprint "$fp" --output-dir "$o/cas" --manifest-dir "$o/manifests" \
		--status-file "$o/status.json" 2>"$o/archiver.log" &
	pids+=($!) ours+=($!)
	mkfifo "$r/fifo"
	"$dir/benchrelay" watch -label "$name" <"$r/fifo" >"$r/events.jsonl" 2>"$r/watch.log" &
	pids+=($!)
	"$bin/moq" --connect "$url" --connect-tls-fingerprint "$fp" export --broadcast "$name" fmp4 \
		>"$r/fifo" 2>"$r/export.log" &
	pids+=($!) refs+=($!)
done

roles() {
	local p
	for p in "${ours[@]}"; do echo "ours=$p"; done
	for p in "${refs[@]}"; do echo "ref=$p"; done
	echo "relay=$relay"
	for p in "${publishers[@]}"; do echo "publishers=$p"; done
	for p in "${encoders[@]}"; do echo "ffmpeg=$p"; done
}
echo "bench-relay: $broadcasts broadcasts; warm-up ${warmup}s, then measuring ${window}s" >&2
sleep "$warmup"
mapfile -t role_args < <(roles)
"$dir/benchrelay" snap "${role_args[@]}" >"$dir/snapshots.jsonl" || fail "a process died during the warm-up; logs in $dir (BENCH_KEEP=1)"
sleep "$window"
"$dir/benchrelay" snap "${role_args[@]}" >>"$dir/snapshots.jsonl" || fail "a process died during the window; logs in $dir (BENCH_KEEP=1)"
echo "bench-relay: window ended at $(date +%s%3N) (Unix ms); stopping the subscribers" >&2

# Subscribers first (wt-archive shuts down cleanly on SIGTERM), then the rest.
kill -TERM "${ours[@]}" "${refs[@]}"
for p in "${ours[@]}"; do wait "$p" || fail "wt-archive $p exited with $?; see $dir/ours/*/archiver.log"; done
for ((i = 0; i < broadcasts; i++)); do
	o=$dir/ours/${names[i]}
	"$dir/ec-node" cas verify --root "$o/cas" --manifest-dir "$o/manifests" >"$o/verify.log" 2>&1 ||
		fail "cas verify failed for ${names[i]}: $(tail -n 5 "$o/verify.log")"
done

echo "## Relay archiving run $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem/ {print $2}') GiB," \
	"Linux $(uname -r), $(go version | cut -d' ' -f3), moq-relay $("$bin/moq-relay" --version | awk '{print $2}'), moq-cli $("$bin/moq" --version | awk '{print $2}')," \
	"$(ffmpeg -version | head -n1 | cut -d' ' -f1-3); CAS on $(df -T "$dir" | awk 'NR==2 {print $2 " " $1}')."
echo "Load: $broadcasts broadcasts of ${size} H.264 at ${bitrate}bit/s (1 s GOPs) + AAC 128k, each archived by one wt-archive and exported by one moq export; ${window}s window after ${warmup}s warm-up."
for name in "${names[@]}"; do
	o=$dir/ours/$name
	echo "wt-archive $name: $(jq -c '{groups, bytes, gaps, reconnects, version}' "$o/status.json");" \
		"gaps: $(cat "$o"/manifests/*/*.jsonl | jq -r 'select(.kind == "gap") | "\(.track) \(.first // 0)-\(.last // 0) \(.reason) at \(.received_unix_ms)"' | paste -sd, -);" \
		"cas verify: $(tail -n 1 "$o/verify.log")"
done
echo
"$dir/benchrelay" report -dir "$dir"
