#!/usr/bin/env bash
# Runs the main job end to end on this machine, offline: a local moq-relay, a live
# test-pattern broadcast (ffmpeg -> moq import fmp4), and `ec-node wt-archive`
# archiving it for a while; then verifies the CAS and the manifests.
#
#   scripts/demo.sh [SECONDS] [OUT_DIR]      (defaults: 20, ./demo-archive)
#
# Peers come from scripts/install-peers.sh (pinned versions, built once, cached).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
out=${2:-demo-archive}
port=${EC_DEMO_PORT:-4443}
broadcast=demo.hang

bin=$(scripts/install-peers.sh | tail -n 1)
mkdir -p "$out/logs"
go build -o "$out/ec-node" ./cmd/ec-node

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "demo: starting moq-relay on 127.0.0.1:$port (logs in $out/logs)"
"$bin/moq-relay" --listen "127.0.0.1:$port" --listen-tls-generate localhost \
  --web-http-listen "127.0.0.1:$port" --auth-public '**' >"$out/logs/relay.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  fp=$(curl -fsS "http://127.0.0.1:$port/certificate.sha256" 2>/dev/null || true)
  [ -n "$fp" ] && break
  sleep 0.2
done
[ -n "$fp" ] || { echo "demo: relay did not start; see $out/logs/relay.log" >&2; exit 1; }
echo "demo: relay certificate fingerprint $fp"

echo "demo: publishing $broadcast (H.264 test pattern + AAC tone, 1 s GOPs)"
ffmpeg -hide_banner -nostdin -loglevel warning -re \
  -f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 30 -keyint_min 30 -sc_threshold 0 \
  -c:a aac -b:a 64k -f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame - 2>"$out/logs/ffmpeg.log" |
  "$bin/moq" --connect "https://127.0.0.1:$port/anon" --connect-tls-fingerprint "$fp" \
    --broadcast "$broadcast" import fmp4 >"$out/logs/publisher.log" 2>&1 &
pids+=($!)

echo "demo: archiving for ${seconds}s into $out/cas and $out/manifests"
"$out/ec-node" wt-archive --url "https://127.0.0.1:$port/anon" --name "$broadcast" \
  --tls-fingerprint "$fp" --output-dir "$out/cas" --manifest-dir "$out/manifests" \
  --status-file "$out/status.json" 2>"$out/logs/wt-archive.log" &
archiver=$!
sleep "$seconds"
kill -TERM "$archiver"
wait "$archiver" || { echo "demo: wt-archive failed; see $out/logs/wt-archive.log" >&2; exit 1; }

echo "demo: manifests"
find "$out/manifests" -name '*.jsonl' -printf '  %p: ' -exec sh -c 'wc -l <"$1"' _ {} \;
echo "demo: verifying (re-hash every object, cross-check the manifests)"
"$out/ec-node" cas verify --root "$out/cas" --manifest-dir "$out/manifests"
echo "demo: worker status: $(cat "$out/status.json")"
