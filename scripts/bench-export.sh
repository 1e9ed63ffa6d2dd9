#!/usr/bin/env bash
# Throughput of `ec-node export` (MB/s of output) next to `ffmpeg -c copy` muxing
# the same fragments from files, in one run, offline (no relay, no real time):
#
#   1. encode BENCH_SECONDS of H.264 (BENCH_SIZE, BENCH_BITRATE, 1 s GOPs) + AAC,
#      split into one single-track CMAF file per track with a fragment per frame
#      (what `moq import fmp4` publishes);
#   2. archive it: internal/benchexport writes the record stream moq-sub would have
#      written (a catalog.json group with the cmaf init segments, then a group per
#      second of media per track), `cas-put --records | manifest-append` stores it;
#   3. reference inputs: per track, its init segment and its group objects, read
#      from the CAS in group order, concatenated with cat into one fMP4 file
#      (once, before timing);
#   4. BENCH_ROUNDS rounds, each running in turn:
#        ours-file    ec-node export (everything) -o FILE  (written, fsynced, linked)
#        ours-stdout  ec-node export (everything) -o - >/dev/null
#        ref-file     ffmpeg -i video -i audio -c copy -map 0 -map 1 -f mp4
#                     -movflags frag_keyframe+empty_moov FILE
#        ref-stdout   the same to pipe:1 >/dev/null
#      after one untimed warm-up of each, so the page cache is warm for all.
#
# It prints per variant the output size, and the median over the rounds of the
# wall time, MB/s of output and CPU (user+sys) ms per MB, the ratios ours/ref,
# and the load average before and after; then checks both files decode without
# a message and have the same duration (ffprobe). A few minutes.
#
#   scripts/bench-export.sh
#
# Environment: BENCH_SECONDS (180), BENCH_SIZE (1280x720), BENCH_BITRATE (6M),
# BENCH_ROUNDS (9), BENCH_DIR (default $TMPDIR or /tmp) picks the disk,
# BENCH_KEEP=1 keeps the run directory.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${BENCH_SECONDS:-180}
size=${BENCH_SIZE:-1280x720}
bitrate=${BENCH_BITRATE:-6M}
rounds=${BENCH_ROUNDS:-9}
dir=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-export.XXXXXX")
cleanup() {
	if [[ ${BENCH_KEEP:-} == 1 ]]; then echo "bench-export: run directory kept: $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
fail() { echo "bench-export: $*" >&2; exit 1; }
for tool in ffmpeg ffprobe jq; do command -v "$tool" >/dev/null || fail "$tool not found"; done
[[ -x /usr/bin/time ]] || fail "/usr/bin/time (GNU time) not found"

mkdir -p "$dir/bin" "$dir/init" "$dir/ref" "$dir/out" "$dir/logs"
for cmd in ec-node cas-put manifest-append; do go build -o "$dir/bin/$cmd" "./cmd/$cmd"; done
go build -o "$dir/bin/benchexport" ./internal/benchexport

echo "bench-export: encoding ${seconds}s of ${size} H.264 at ${bitrate}bit/s + AAC 128k" >&2
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i "testsrc=size=$size:rate=30:duration=$seconds" \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$seconds" \
	-vf noise=alls=12:allf=t -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p \
	-b:v "$bitrate" -maxrate "$bitrate" -bufsize "$bitrate" -g 30 -keyint_min 30 -sc_threshold 0 \
	-c:a aac -b:a 128k -f mp4 "$dir/media.mp4"
cmaf=(-c copy -f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame)
ffmpeg -hide_banner -nostdin -loglevel error -i "$dir/media.mp4" -map 0:v "${cmaf[@]}" "$dir/video.cmaf.mp4"
ffmpeg -hide_banner -nostdin -loglevel error -i "$dir/media.mp4" -map 0:a "${cmaf[@]}" "$dir/audio.cmaf.mp4"

echo "bench-export: archiving it (cas-put --records | manifest-append)" >&2
broadcast=bench.hang
"$dir/bin/benchexport" records -broadcast "$broadcast" -init-dir "$dir/init" "$dir/video.cmaf.mp4" "$dir/audio.cmaf.mp4" |
	"$dir/bin/cas-put" --root "$dir/cas" --records |
	"$dir/bin/manifest-append" --manifest-dir "$dir/manifests" >/dev/null
for track in 0.m4s 1.m4s; do
	manifest=$dir/manifests/$broadcast/$track.jsonl
	[[ -f $manifest ]] || fail "no manifest $manifest"
	jq -r 'select(.kind == "group") | "\(.group) \(.path)"' "$manifest" | sort -n | cut -d' ' -f2 |
		sed "s|^|$dir/cas/|" | xargs cat "$dir/init/$track.init.mp4" >"$dir/ref/$track.mp4"
done
archived=$(jq -cs '[.[] | select(.kind == "group")] | {groups: length, bytes: (map(.size) | add)}' "$dir"/manifests/"$broadcast"/*.jsonl)
echo "bench-export: archive: $archived" >&2

export_args=(--manifest-dir "$dir/manifests" --root "$dir/cas" --broadcast "$broadcast" --progress never)
ref_args=(-hide_banner -nostdin -loglevel error -i "$dir/ref/0.m4s.mp4" -i "$dir/ref/1.m4s.mp4"
	-c copy -map 0 -map 1 -f mp4 -movflags frag_keyframe+empty_moov)

# run VARIANT: one timed run; appends "variant wall user sys bytes" to times.txt.
run() {
	local v=$1 out=$dir/out/$1.mp4 t=$dir/time.txt bytes
	rm -f "$out"
	case $v in
	ours-file) /usr/bin/time -f '%e %U %S' -o "$t" "$dir/bin/ec-node" export "${export_args[@]}" -o "$out" 2>>"$dir/logs/ours.log" ;;
	ours-stdout) /usr/bin/time -f '%e %U %S' -o "$t" "$dir/bin/ec-node" export "${export_args[@]}" -o - 2>>"$dir/logs/ours.log" >/dev/null ;;
	ref-file) /usr/bin/time -f '%e %U %S' -o "$t" ffmpeg "${ref_args[@]}" "$out" 2>>"$dir/logs/ref.log" ;;
	ref-stdout) /usr/bin/time -f '%e %U %S' -o "$t" ffmpeg "${ref_args[@]}" pipe:1 2>>"$dir/logs/ref.log" >/dev/null ;;
	esac
	# stdout variants write what the file variant of the same side writes.
	bytes=$(stat -c %s "$dir/out/${v%-*}-file.mp4")
	echo "$v $(cat "$t") $bytes" >>"$dir/times.txt"
}

variants=(ours-file ref-file ours-stdout ref-stdout)
echo "bench-export: warm-up (untimed), then $rounds rounds of: ${variants[*]}" >&2
for v in "${variants[@]}"; do run "$v"; done
: >"$dir/times.txt"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
	for v in "${variants[@]}"; do run "$v"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "# machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), $(ffmpeg -version | head -n 1 | cut -d' ' -f1-3), disk: $(df -T "$dir" | awk 'NR==2 {print $2 " on " $1}')"
echo "# load average before: $load_before, after: $load_after"
echo "# media: ${seconds}s ${size} H.264 ${bitrate}bit/s + AAC 128k; archive: $archived"
echo "# medians of $rounds rounds (MB = 10^6 bytes); per round: wall s / MB/s"
awk -v rounds="$rounds" '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	{
		v = $1; n[v]++; mb[v] = $5 / 1e6
		wall[v, n[v]] = $2; rate[v, n[v]] = mb[v] / $2; cpu[v, n[v]] = ($3 + $4) * 1e3 / mb[v]
		per[v] = per[v] sprintf(" %.2f/%.0f", $2, mb[v] / $2)
	}
	END {
		printf "%-12s %9s %8s %8s %12s  %s\n", "variant", "output MB", "wall s", "MB/s", "CPU ms/MB", "rounds"
		split("ours-file ref-file ours-stdout ref-stdout", vs, " ")
		for (k = 1; k <= 4; k++) {
			v = vs[k]
			for (i = 1; i <= n[v]; i++) { w[i] = wall[v, i]; r[i] = rate[v, i]; c[i] = cpu[v, i] }
			W[v] = median(w, n[v]); R[v] = median(r, n[v]); C[v] = median(c, n[v])
			printf "%-12s %9.1f %8.3f %8.0f %12.2f %s\n", v, mb[v], W[v], R[v], C[v], per[v]
		}
		printf "ratio ours/ref, file:   MB/s %.2fx, CPU ms/MB %.2fx\n", R["ours-file"] / R["ref-file"], C["ours-file"] / C["ref-file"]
		printf "ratio ours/ref, stdout: MB/s %.2fx, CPU ms/MB %.2fx\n", R["ours-stdout"] / R["ref-stdout"], C["ours-stdout"] / C["ref-stdout"]
	}' "$dir/times.txt"

# The outputs decode without a message and last as long: the same video; ours
# keeps the audio frames that start before the video ends, so its audio may be up
# to one AAC frame (21.3 ms) shorter than the reference's, which keeps them all.
declare -A dur
for v in ours-file ref-file; do
	msgs=$(ffmpeg -v error -i "$dir/out/$v.mp4" -f null - 2>&1) || fail "$v: ffmpeg decode failed: $msgs"
	[[ -z $msgs ]] || fail "$v: ffmpeg decode printed: $msgs"
	streams=$(ffprobe -v error -show_entries stream=codec_type,duration -of csv=p=0 "$dir/out/$v.mp4" | paste -sd' ')
	for s in $streams; do dur[$v,${s%,*}]=${s#*,}; done
	echo "check $v: decodes without a message; stream,duration s: $streams"
done
awk -v ov="${dur[ours-file,video]}" -v rv="${dur[ref-file,video]}" -v oa="${dur[ours-file,audio]}" -v ra="${dur[ref-file,audio]}" \
	'BEGIN { exit !(ov == rv && ra - oa >= 0 && ra - oa < 0.0214) }' ||
	fail "durations differ: video ${dur[ours-file,video]} vs ${dur[ref-file,video]}, audio ${dur[ours-file,audio]} vs ${dur[ref-file,audio]}"
echo "check: same video duration; audio differs by $(awk -v a="${dur[ours-file,audio]}" -v b="${dur[ref-file,audio]}" 'BEGIN { printf "%.1f", (b - a) * 1e3 }') ms"
