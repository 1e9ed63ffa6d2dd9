#!/usr/bin/env bash
# Throughput of `ec-node replay --speed max` through the REAL moq-relay into a real
# subscriber (`moq export fmp4`), next to the reference publisher `moq import fmp4`
# fed by `ffmpeg -c copy` of the same media, in the same run:
#
#   1. encode BENCH_SECONDS of H.264 (BENCH_SIZE, BENCH_BITRATE) + AAC into an MP4;
#   2. publish it once in real time (-re) and archive it with ec-node wt-archive;
#   3. reference: ffmpeg -c copy (no -re) | moq import fmp4, read by moq export;
#   4. ours: ec-node replay of that archive at each of BENCH_SPEEDS (max 8), each
#      read by moq export.
#
# For 3 and 4 it reports what the subscriber received, over the time from its first
# to its last fragment: fragments (moq export writes one per group of a media
# track), fragments/s, MB/s; for ours also the publisher's own summary line
# (groups/s and MB/s it published). About a minute.
#
#   scripts/bench-replay.sh
#
# Environment: BENCH_SECONDS (20), BENCH_BITRATE (8M), BENCH_SIZE (1280x720),
# BENCH_SPEEDS ("max 8"), BENCH_PORT (4473), BENCH_KEEP=1 keeps the run directory; EC_PEERS_BIN skips
# scripts/install-peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_SECONDS:-20}
bitrate=${BENCH_BITRATE:-8M}
size=${BENCH_SIZE:-1280x720}
port=${BENCH_PORT:-4473}
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-replay.XXXXXX")

pids=()
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ ${BENCH_KEEP:-} == 1 ]]; then echo "bench-replay: run directory kept: $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
fail() { echo "bench-replay: $*" >&2; exit 1; }
for tool in curl jq ffmpeg; do command -v "$tool" >/dev/null || fail "$tool not found"; done

bin=${EC_PEERS_BIN:-$(scripts/install-peers.sh | tail -n 1)}
go build -o "$dir/ec-node" ./cmd/ec-node
go build -o "$dir/benchrelay" ./internal/benchrelay
mkdir -p "$dir/logs"
# frag_every_frame repeats a tfdt when it interleaves copied audio and video, which
# moq import refuses; a one-frame fragment duration cuts the same fragments.
cmaf=(-f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer -frag_duration 33333)

echo "bench-replay: encoding ${seconds}s of ${size} H.264 at ${bitrate}bit/s + AAC" >&2
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i "testsrc=size=$size:rate=30:duration=$seconds" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$seconds" \
	-vf noise=alls=12:allf=t -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p \
	-b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" -g 30 -keyint_min 30 -sc_threshold 0 \
	-c:a aac -b:a 128k -f mp4 "$dir/media.mp4"

"$bin/moq-relay" --listen "127.0.0.1:$port" --listen-tls-generate localhost \
	--web-http-listen "127.0.0.1:$port" --auth-public '**' >"$dir/logs/relay.log" 2>&1 &
pids+=($!)
fp=
for _ in $(seq 50); do
	fp=$(curl -fsS "http://127.0.0.1:$port/certificate.sha256" 2>/dev/null || true)
	[[ -n $fp ]] && break
	sleep 0.2
done
[[ -n $fp ]] || fail "relay did not start; see $dir/logs/relay.log"
url="https://127.0.0.1:$port/anon"

# publish NAME FFMPEG-INPUT-FLAGS...: ffmpeg -c copy of the media into moq import fmp4.
publish() {
	local name=$1
	shift
	ffmpeg -hide_banner -nostdin -loglevel error "$@" -i "$dir/media.mp4" -c copy "${cmaf[@]}" - 2>"$dir/logs/ffmpeg-$name.log" |
		"$bin/moq" --connect "$url" --connect-tls-fingerprint "$fp" --broadcast "$name" import fmp4 \
			>"$dir/logs/import-$name.log" 2>&1
}

# subscribe NAME: moq export fmp4 | benchrelay watch, in the background.
subscribe() {
	local name=$1
	mkfifo "$dir/$name.fifo"
	"$dir/benchrelay" watch -label "$name" <"$dir/$name.fifo" >"$dir/$name.events.jsonl" 2>"$dir/logs/watch-$name.log" &
	pids+=($!)
	"$bin/moq" --connect "$url" --connect-tls-fingerprint "$fp" export --broadcast "$name" fmp4 \
		>"$dir/$name.fifo" 2>"$dir/logs/export-$name.log" &
	pids+=($!)
	exporter=$!
}

echo "bench-replay: archiving it, published in real time" >&2
"$dir/ec-node" wt-archive --url "$url" --name src.hang --tls-fingerprint "$fp" \
	--output-dir "$dir/cas" --manifest-dir "$dir/manifests" 2>"$dir/logs/archive.log" &
archiver=$!
pids+=("$archiver")
publish src.hang -re
sleep 2
kill -TERM "$archiver"
wait "$archiver" || fail "wt-archive failed; see $dir/logs/archive.log"

echo "bench-replay: reference: ffmpeg -c copy | moq import fmp4" >&2
subscribe ref.hang
ref_export=$exporter
sleep 1
publish ref.hang
sleep 3
kill "$ref_export" 2>/dev/null || true

speeds=(${BENCH_SPEEDS:-max 8})
for speed in "${speeds[@]}"; do
	name=rep-$speed.hang
	echo "bench-replay: ours: ec-node replay --speed $speed" >&2
	subscribe "$name"
	rep_export=$exporter
	# Our own subscriber too: it skips nothing by policy, so what it archives is
	# what the relay delivered (into a store of its own, fsynced as always).
	"$dir/ec-node" wt-archive --url "$url" --name "$name" --tls-fingerprint "$fp" \
		--output-dir "$dir/cas-$speed" --manifest-dir "$dir/manifests-$speed" 2>"$dir/logs/archive-$speed.log" &
	archiver=$!
	pids+=("$archiver")
	sleep 0.5
	"$dir/ec-node" replay --url "$url" --tls-fingerprint "$fp" --name "$name" --from-broadcast src.hang \
		--output-dir "$dir/cas" --manifest-dir "$dir/manifests" --speed "$speed" --wait-subscribers 20s \
		2>"$dir/logs/replay-$speed.log" || fail "replay failed; see $dir/logs/replay-$speed.log"
	sleep 3
	kill "$rep_export" 2>/dev/null || true
	kill -TERM "$archiver"
	wait "$archiver" || fail "wt-archive of $name failed; see $dir/logs/archive-$speed.log"
done
sleep 1

archived=$(cat "$dir"/manifests/src.hang/*.jsonl | jq -s '[.[] | select(.kind == "group")] | {groups: length, bytes: (map(.size) | add)}')
echo "archive of the media: $archived"
for name in ref.hang "${speeds[@]/#/rep-}"; do
	name=${name%.hang}.hang
	jq -s --arg name "$name" '
		(map(select(.bytes > 0))) as $f |
		((($f | last.written_unix_us) - ($f | first.written_unix_us)) / 1e6) as $secs |
		{subscriber_of: $name, fragments: ($f | length), mb: (($f | map(.bytes) | add) / 1e6),
		 seconds: $secs, fragments_per_s: (($f | length) / $secs), mb_per_s: ((($f | map(.bytes) | add) / 1e6) / $secs)}' \
		"$dir/$name.events.jsonl"
done
for speed in "${speeds[@]}"; do
	echo "publisher at --speed $speed: $(grep -o 'msg="replay: done".*' "$dir/logs/replay-$speed.log")"
	cat "$dir/manifests-$speed"/*/*.jsonl | jq -s --arg speed "$speed" '
		map(select(.kind == "group" and .track != "catalog.json")) as $g |
		((($g | map(.received_unix_ms) | max) - ($g | map(.received_unix_ms) | min)) / 1e3) as $secs |
		{wt_archive_of_speed: $speed, media_groups: ($g | length), mb: (($g | map(.size) | add) / 1e6),
		 seconds: $secs, groups_per_s: (($g | length) / $secs), mb_per_s: ((($g | map(.size) | add) / 1e6) / $secs)}'
done
