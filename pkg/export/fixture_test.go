package export

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// The fixture archives what moq-cli's `import fmp4` publishes: per track, a
// single-track init segment in the catalog and one moof+mdat per frame, video
// groups of one 1 s GOP (30 frames), audio groups of 47 AAC frames (~1 s).
const (
	broadcast  = "live/test.hang"
	videoTrack = "0.m4s"
	audioTrack = "1.m4s"
	gop        = 30
	audioGroup = 47
	t0         = int64(1_767_225_600_000) // receive time base, Unix ms
)

// media is one encoded track: its init segment and fragments.
type media struct {
	init  []byte
	frags [][]byte
}

var (
	mediaMu    sync.Mutex
	mediaCache = map[string]media{}
)

// encode runs ffmpeg as internal/peers does (CMAF, a fragment per frame) and
// splits its output. Tests skip without ffmpeg.
func encode(t testing.TB, kind, size string, seconds int) media {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	key := kind + size + strconv.Itoa(seconds)
	mediaMu.Lock()
	defer mediaMu.Unlock()
	if m, ok := mediaCache[key]; ok {
		return m
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi"}
	if kind == "video" {
		args = append(args, "-i", "testsrc=size="+size+":rate=30", "-t", strconv.Itoa(seconds),
			"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
			"-g", "30", "-keyint_min", "30", "-sc_threshold", "0")
	} else {
		args = append(args, "-i", "sine=frequency=440:sample_rate=48000", "-t", strconv.Itoa(seconds), "-c:a", "aac", "-b:a", "64k")
	}
	args = append(args, "-f", "mp4", "-movflags", "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame", "-")
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	var m media
	var pos uint64
	r := bytes.NewReader(out)
	fragStart := -1
	for r.Len() > 0 {
		start := pos
		box, err := mp4.DecodeBox(start, r)
		if err != nil {
			t.Fatal(err)
		}
		pos = uint64(len(out) - r.Len())
		switch box.Type() {
		case "ftyp", "moov":
			m.init = append(m.init, out[start:pos]...)
		case "moof":
			fragStart = int(start)
		case "mdat":
			m.frags = append(m.frags, out[fragStart:pos])
		}
	}
	mediaCache[key] = m
	return m
}

// fixture is an archive under construction.
type fixture struct {
	t         testing.TB
	manifests string
	root      string
	store     *cas.Local
}

func newFixture(t testing.TB) *fixture {
	dir := t.TempDir()
	store, err := cas.OpenLocal(filepath.Join(dir, "cas"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, manifests: filepath.Join(dir, "manifests"), root: filepath.Join(dir, "cas"), store: store}
}

func (f *fixture) appendLine(e manifest.Entry) {
	f.t.Helper()
	path, err := manifest.FilePath(f.manifests, e.Broadcast, e.Track)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	line, err := manifest.AppendLine(nil, e)
	if err != nil {
		f.t.Fatal(err)
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.Write(line); err != nil {
		f.t.Fatal(err)
	}
}

// group stores a group of frames and appends its line.
func (f *fixture) group(track string, seq uint64, received int64, frames ...[]byte) manifest.Entry {
	f.t.Helper()
	payload := bytes.Join(frames, nil)
	res, err := f.store.Put(context.Background(), bytes.NewReader(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	e := manifest.Entry{
		Header: record.Header{V: 1, Kind: record.KindGroup, Broadcast: broadcast, Track: track, Group: seq,
			Size: int64(len(payload)), ReceivedUnixMs: received},
		BLAKE3: res.ID.String(), Path: res.Path,
	}
	for _, fr := range frames {
		e.Frames = append(e.Frames, int64(len(fr)))
	}
	f.appendLine(e)
	return e
}

func (f *fixture) gap(track string, first, last uint64, reason string, received int64) {
	f.appendLine(manifest.Entry{Header: record.Header{V: 1, Kind: record.KindGap, Broadcast: broadcast, Track: track,
		First: first, Last: last, Reason: reason, ReceivedUnixMs: received}})
}

// catalog archives a hang catalog naming the tracks with these containers.
func (f *fixture) catalog(seq uint64, received int64, video, audio media, kind string) {
	f.t.Helper()
	container := func(m media) map[string]string {
		if kind != "cmaf" {
			return map[string]string{"kind": kind}
		}
		return map[string]string{"kind": "cmaf", "init": base64.StdEncoding.EncodeToString(m.init)}
	}
	doc, err := json.Marshal(map[string]any{
		"video": map[string]any{"renditions": map[string]any{videoTrack: map[string]any{"codec": "avc1.42c00d", "container": container(video)}}},
		"audio": map[string]any{"renditions": map[string]any{audioTrack: map[string]any{"codec": "mp4a.40.2", "sampleRate": 48000, "numberOfChannels": 1, "container": container(audio)}}},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.group(catalog.TrackName, seq, received, doc)
}

// session publishes video and audio as one publisher session: its catalog at
// start, then groups numbered from seq0, video group k received at
// start+(k+1) s, skipping the video groups in drop (a gap line says why).
// It returns the video group entries by index.
func (f *fixture) session(start int64, seq0 uint64, video, audio media, drop map[int]string) []manifest.Entry {
	f.t.Helper()
	f.catalog(seq0, start, video, audio, "cmaf")
	var out []manifest.Entry
	for k := 0; k*gop < len(video.frags); k++ {
		recv := start + int64(k+1)*1000
		if reason, ok := drop[k]; ok {
			f.gap(videoTrack, seq0+uint64(k), seq0+uint64(k), reason, recv)
			out = append(out, manifest.Entry{})
			continue
		}
		out = append(out, f.group(videoTrack, seq0+uint64(k), recv, video.frags[k*gop:min((k+1)*gop, len(video.frags))]...))
	}
	for k := 0; k*audioGroup < len(audio.frags); k++ {
		f.group(audioTrack, seq0+uint64(k), start+int64(k+1)*1000+7, audio.frags[k*audioGroup:min((k+1)*audioGroup, len(audio.frags))]...)
	}
	return out
}

// files collects the output files of an export in a directory.
type files struct {
	dir   string
	mu    sync.Mutex
	names []string
}

func (fs *files) open(n int, track string) (io.WriteCloser, error) {
	name := fmt.Sprintf("out-%d%s.mp4", n, strings.ReplaceAll(track, ".", "_"))
	fs.mu.Lock()
	fs.names = append(fs.names, name)
	fs.mu.Unlock()
	return os.Create(filepath.Join(fs.dir, name))
}

func (fs *files) path(i int) string { return filepath.Join(fs.dir, fs.names[i]) }

// probe returns the stream types and the duration ffprobe reports, and
// requires ffmpeg to decode the file without a message.
func probe(t *testing.T, path string) (streams []string, duration float64) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("%s: ffmpeg decode: %v\n%s", path, err, out)
	}
	pr, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of", "default=nw=1", path).Output()
	if err != nil {
		t.Fatalf("%s: ffprobe: %v", path, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(pr)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "codec_type":
			streams = append(streams, v)
		case "duration":
			duration, _ = strconv.ParseFloat(v, 64)
		}
	}
	return streams, duration
}

// frameHashes decodes the video of an MP4 and returns each frame's MD5.
func frameHashes(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("%s: framemd5: %v", path, err)
	}
	var hashes []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		hashes = append(hashes, strings.TrimSpace(fields[len(fields)-1]))
	}
	return hashes
}
