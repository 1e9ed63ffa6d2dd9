package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/zeebo/blake3"
)

const (
	testBroadcast = "live/alice"
	t0            = int64(1_767_225_600_000)
)

// archive is a test archive: a CAS and manifests written by the real
// packages. Payloads are not media; durations come from the manifest's
// per-frame timestamps, so nothing parses them.
type archive struct {
	t        *testing.T
	root     string
	manifest string
	store    *cas.Local
	dir      *manifest.Dir
}

func newArchive(t *testing.T) *archive {
	t.Helper()
	a := &archive{t: t, root: filepath.Join(t.TempDir(), "cas"), manifest: filepath.Join(t.TempDir(), "manifests")}
	var err error
	if a.store, err = cas.OpenLocal(a.root); err != nil {
		t.Fatal(err)
	}
	if a.dir, err = manifest.OpenDir(a.manifest, 0, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.dir.Close() })
	return a
}

// put stores a group of n frames (the last takes the rest of payload) and
// appends its line.
func (a *archive) put(track string, group uint64, received int64, payload []byte, n int, timescale uint64, ts []int64) manifest.Entry {
	a.t.Helper()
	frames := make([]int64, n)
	for i := range frames {
		frames[i] = 1
	}
	frames[n-1] = int64(len(payload) - n + 1)
	res, err := a.store.Put(context.Background(), bytes.NewReader(payload))
	if err != nil {
		a.t.Fatal(err)
	}
	e := manifest.Entry{Header: record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: testBroadcast, Track: track,
		Group: group, Frames: frames, Size: int64(len(payload)), ReceivedUnixMs: received, Timescale: timescale, Timestamps: ts},
		BLAKE3: res.ID.String(), Path: cas.ObjectPath(res.ID)}
	if _, err := a.dir.Append(testBroadcast, track, e); err != nil {
		a.t.Fatal(err)
	}
	return e
}

// catalog archives a catalog naming a video and an audio cmaf rendition
// whose init segments are initV and initA.
func (a *archive) catalog(group uint64, received int64, initV, initA string) {
	a.t.Helper()
	doc := fmt.Sprintf(`{"video":{"renditions":{"video0":{"codec":"avc1.64001f","container":{"kind":"cmaf","init":%q}}}},`+
		`"audio":{"renditions":{"audio0":{"codec":"mp4a.40.2","container":{"kind":"cmaf","init":%q}}}}}`,
		base64.StdEncoding.EncodeToString([]byte(initV)), base64.StdEncoding.EncodeToString([]byte(initA)))
	a.put(catalog.TrackName, group, received, []byte(doc), 1, 0, nil)
}

// video archives a 1 s group of 30 frames at timescale 90000.
func (a *archive) video(group uint64, received int64) manifest.Entry {
	ts := make([]int64, 30)
	for i := range ts {
		ts[i] = int64(group)*90000 + int64(i)*3000
	}
	return a.put("video0", group, received, fmt.Appendf(nil, "video group %030d at %d", group, received), len(ts), 90000, ts)
}

// audio archives a group of 47 AAC frames (1024 samples at 48 kHz, timestamps in µs).
func (a *archive) audio(group uint64, received int64) manifest.Entry {
	ts := make([]int64, 47)
	for i := range ts {
		ts[i] = (int64(group)*47 + int64(i)) * 1024 * 1_000_000 / 48000
	}
	return a.put("audio0", group, received, fmt.Appendf(nil, "audio group %033d at %d", group, received), len(ts), 1_000_000, ts)
}

func (a *archive) gap(track string, first, last uint64, received int64) {
	a.t.Helper()
	e := manifest.Entry{Header: record.Header{V: record.Version, Kind: record.KindGap, Broadcast: testBroadcast, Track: track,
		First: first, Last: last, Reason: record.GapDisconnected, ReceivedUnixMs: received}}
	if _, err := a.dir.Append(testBroadcast, track, e); err != nil {
		a.t.Fatal(err)
	}
}

// server starts archive-serve over the archive; logs go to the returned buffer.
func (a *archive) server() (*httptest.Server, *bytes.Buffer) {
	var logs bytes.Buffer
	srv := httptest.NewServer(New(Options{ManifestDir: a.manifest, Store: a.store, StoreRoot: a.root,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}))
	a.t.Cleanup(srv.Close)
	return srv, &logs
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// fixture: session 1 with video groups 0-2, 5 (3-4 a recorded gap), 6, then
// a publisher restart with a new catalog (new init) and groups 0-1.
func fixture(t *testing.T) (*archive, []manifest.Entry) {
	a := newArchive(t)
	a.catalog(0, t0, "init-v1", "init-a1")
	var v []manifest.Entry
	for g := range uint64(3) {
		v = append(v, a.video(g, t0+1000*int64(g+1)))
		a.audio(g, t0+1000*int64(g+1)+5)
	}
	a.gap("video0", 3, 4, t0+4500)
	v = append(v, a.video(5, t0+6000), a.video(6, t0+7000))
	a.catalog(0, t0+10_000, "init-v2", "init-a1")
	v = append(v, a.video(0, t0+11_000), a.video(1, t0+12_000))
	return a, v
}

func TestMediaPlaylist(t *testing.T) {
	a, v := fixture(t)
	srv, _ := a.server()
	base := srv.URL + "/hls/" + "live%2Falice"
	resp, body := get(t, base+"/video0/index.m3u8")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	seg := func(e manifest.Entry) string {
		return "#EXTINF:1.000000,\n../../../objects/blake3/" + e.BLAKE3 + ".m4s\n"
	}
	initV1, initV2 := cas.ID(hashOf("init-v1")), cas.ID(hashOf("init-v2"))
	want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n" +
		"#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=0\n" +
		"#EXT-X-MAP:URI=\"../../../init/" + initV1.String() + ".mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n" +
		seg(v[0]) + seg(v[1]) + seg(v[2]) +
		"#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:05.000Z\n" + seg(v[3]) + seg(v[4]) +
		"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"../../../init/" + initV2.String() + ".mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:10.000Z\n" +
		seg(v[5]) + seg(v[6])
	if body != want {
		t.Errorf("playlist:\n%s\nwant:\n%s", body, want)
	}

	// A closed range is VOD and ends; the range selects by receive time.
	_, body = get(t, base+"/video0/index.m3u8?from="+fmt.Sprint(t0+2000)+"&to=2026-01-01T00:00:06Z")
	if !strings.Contains(body, "#EXT-X-PLAYLIST-TYPE:VOD\n") || !strings.HasSuffix(body, "#EXT-X-ENDLIST\n") ||
		strings.Count(body, "#EXTINF") != 3 || strings.Contains(body, v[0].BLAKE3) {
		t.Errorf("VOD range: %s", body)
	}

	// The init segments are served by hash.
	resp, body = get(t, srv.URL+"/init/"+initV2.String()+".mp4")
	if resp.StatusCode != 200 || body != "init-v2" || resp.Header.Get("ETag") != `"`+initV2.String()+`"` {
		t.Errorf("init: %d %q %q", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
}

func hashOf(s string) [32]byte { return blake3.Sum256([]byte(s)) }

func TestAudioDurations(t *testing.T) {
	a, _ := fixture(t)
	srv, _ := a.server()
	_, body := get(t, srv.URL+"/hls/live%2Falice/audio0/index.m3u8")
	// 47 × 1024 / 48000 = 1.0026667 s, from timestamps rounded to µs.
	if got := strings.Count(body, "#EXTINF:1.00266"); got != 3 || !strings.Contains(body, "#EXT-X-TARGETDURATION:2\n") {
		t.Errorf("audio playlist: %d segments of 1.002667 s:\n%s", got, body)
	}
}

func TestMultivariant(t *testing.T) {
	a, _ := fixture(t)
	srv, _ := a.server()
	_, body := get(t, srv.URL+"/hls/live%2Falice/index.m3u8?to=2026-01-01T00:00:06Z")
	for _, want := range []string{
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio0",DEFAULT=YES,AUTOSELECT=YES,URI="audio0/index.m3u8?to=2026-01-01T00%3A00%3A06Z"`,
		`CODECS="avc1.64001f,mp4a.40.2",AUDIO="audio"` + "\nvideo0/index.m3u8?to=2026-01-01T00%3A00%3A06Z\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("multivariant lacks %q:\n%s", want, body)
		}
	}
}

func TestEventPlaylistGrows(t *testing.T) {
	a := newArchive(t)
	a.catalog(0, t0, "v", "a")
	a.video(0, t0+1000)
	a.video(1, t0+2000)
	late := a.video(3, t0+3000) // 2 may still be appended
	srv, _ := a.server()
	_, body := get(t, srv.URL+"/hls/live%2Falice/video0/index.m3u8")
	body0 := body
	if strings.Contains(body, late.BLAKE3) || strings.Count(body, "#EXTINF") != 2 {
		t.Errorf("EVENT playlist passed over group 2 before it could arrive:\n%s", body)
	}
	_, body = get(t, srv.URL+"/hls/live%2Falice/video0/index.m3u8?to="+fmt.Sprint(t0+5000))
	if !strings.Contains(body, "#EXT-X-DISCONTINUITY\n") || !strings.Contains(body, late.BLAKE3) {
		t.Errorf("VOD playlist lacks group 3 after a discontinuity:\n%s", body)
	}

	// Group 2 arrives: the EVENT playlist grows at its end only.
	a.video(2, t0+3100)
	_, grown := get(t, srv.URL+"/hls/live%2Falice/video0/index.m3u8")
	if !strings.HasPrefix(grown, body0) || strings.Count(grown, "#EXTINF") != 4 || strings.Contains(grown, "#EXT-X-DISCONTINUITY\n") {
		t.Errorf("EVENT playlist did not grow at its end:\nbefore:\n%s\nafter:\n%s", body0, grown)
	}
}

func TestObject(t *testing.T) {
	a, v := fixture(t)
	srv, logs := a.server()
	url := srv.URL + "/objects/blake3/" + v[0].BLAKE3 + ".m4s"
	want, _ := os.ReadFile(filepath.Join(a.root, v[0].Path))
	for _, pass := range []string{"first (verified)", "second (cached)"} {
		resp, body := get(t, url)
		if resp.StatusCode != 200 || body != string(want) {
			t.Fatalf("%s: status %d, body %q", pass, resp.StatusCode, body)
		}
		for k, v := range map[string]string{"ETag": `"` + v[0].BLAKE3 + `"`, "Cache-Control": "public, max-age=31536000, immutable"} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", pass, k, got, v)
			}
		}
	}
	resp, body := get(t, url, "Range", "bytes=2-5")
	if resp.StatusCode != http.StatusPartialContent || body != string(want[2:6]) {
		t.Errorf("range: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, url, "If-None-Match", `"`+v[0].BLAKE3+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if logs.Len() > 0 {
		t.Errorf("logs: %s", logs)
	}
}

func TestCorruptObject(t *testing.T) {
	a, v := fixture(t)
	srv, logs := a.server()
	path := filepath.Join(a.root, v[1].Path)
	data, _ := os.ReadFile(path)
	data[0] ^= 1
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // never remembered as verified
		resp, body := get(t, srv.URL+"/objects/blake3/"+v[1].BLAKE3+".m4s")
		if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, string(data)) || !strings.Contains(body, v[1].BLAKE3) {
			t.Errorf("corrupt object: status %d, body %q", resp.StatusCode, body)
		}
	}
	if !strings.Contains(logs.String(), "corrupt object") || !strings.Contains(logs.String(), "hash="+v[1].BLAKE3) ||
		!strings.Contains(logs.String(), "path="+path) {
		t.Errorf("log does not name the corrupt object's hash and path:\n%s", logs)
	}
}

func TestNotFound(t *testing.T) {
	a, v := fixture(t)
	srv, _ := a.server()
	for _, path := range []string{
		"/objects/blake3/" + strings.Repeat("0", 64) + ".m4s", // absent
		"/objects/blake3/" + strings.ToUpper(v[0].BLAKE3) + ".m4s",
		"/objects/blake3/" + v[0].BLAKE3 + ".bin",
		"/objects/blake3/..%2F..%2Fcas.layout",
		"/objects/blake3/%2E%2E%2F" + v[0].BLAKE3 + ".m4s",
		"/init/" + v[0].BLAKE3 + ".mp4", // an object, not an init segment
		"/hls/live%2Fbob/index.m3u8",
		"/hls/..%2F..%2Fetc/index.m3u8",
		"/hls/live%2Falice/..%2Fvideo0/index.m3u8",
		"/hls/live%2Falice/catalog.json/index.m3u8", // not a media track
		"/api/broadcasts/live%2Fbob",
	} {
		if resp, body := get(t, srv.URL+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404: %q", path, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, srv.URL+"/hls/live%2Falice/index.m3u8?from=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad from: status %d, want 400", resp.StatusCode)
	}
}

func TestAPI(t *testing.T) {
	a, _ := fixture(t)
	srv, _ := a.server()
	_, body := get(t, srv.URL+"/api/broadcasts/live%2Falice")
	var b apiBroadcast
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	var video apiTrack
	for _, tr := range b.Tracks {
		if tr.Name == "video0" {
			video = tr
		}
	}
	wantCov := []apiRun{{t0, t0 + 3000, 3}, {t0 + 5000, t0 + 7000, 2}, {t0 + 10_000, t0 + 12_000, 2}}
	wantGaps := []apiGap{{t0 + 3000, t0 + 5000, record.GapDisconnected}, {t0 + 7000, t0 + 10_000, whySession}}
	if video.Kind != "video" || video.Codec != "avc1.64001f" || fmt.Sprint(video.Coverage) != fmt.Sprint(wantCov) || fmt.Sprint(video.Gaps) != fmt.Sprint(wantGaps) {
		t.Errorf("video0: %+v\nwant coverage %v, gaps %v", video, wantCov, wantGaps)
	}
	_, body = get(t, srv.URL+"/api/broadcasts")
	if !strings.Contains(body, `"name": "live/alice"`) || !strings.Contains(body, `"hls": "/hls/live%2Falice/index.m3u8"`) {
		t.Errorf("broadcasts: %s", body)
	}
}

func TestPage(t *testing.T) {
	srv, _ := newArchive(t).server()
	for path, want := range map[string]string{"/": "hls.min.js", "/vendor/hls.min.js": "Hls"} {
		if resp, body := get(t, srv.URL+path); resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: status %d, lacks %q", path, resp.StatusCode, want)
		}
	}
}

func TestLineBeingAppended(t *testing.T) {
	a := newArchive(t)
	a.catalog(0, t0, "v", "a")
	a.video(0, t0+1000)
	a.video(1, t0+2000)
	path, err := manifest.FilePath(a.manifest, testBroadcast, "video0")
	if err != nil {
		t.Fatal(err)
	}
	// The archiver's next line, half written.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"kind":"group","broadcast":"live/alice","tr`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	srv, logs := a.server()
	resp, body := get(t, srv.URL+"/hls/live%2Falice/video0/index.m3u8")
	if resp.StatusCode != 200 || strings.Count(body, "#EXTINF") != 2 {
		t.Errorf("status %d, want the 2 complete groups:\n%s\n%s", resp.StatusCode, body, logs)
	}
}

// TestArchiveRefusesLinksAndSpecialFiles: the listing passes over a link or
// special file in the manifest tree with a warning naming it (one bad file
// must not take every broadcast off the air); reading it as a track is an
// error naming it. Neither follows the link nor blocks on the FIFO.
func TestArchiveRefusesLinksAndSpecialFiles(t *testing.T) {
	manifesttest.CheckRefused(t, func(t *testing.T) (string, string, func(*manifesttest.Planted)) {
		a, _ := fixture(t)
		rel, _ := manifest.FilePath("", testBroadcast, "video0")
		var logs bytes.Buffer
		s := New(Options{ManifestDir: a.manifest, Store: a.store, StoreRoot: a.root, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		return a.manifest, rel, func(p *manifesttest.Planted) {
			list, err := s.listArchive()
			if err != nil {
				t.Errorf("listArchive: %v", err)
			}
			for _, b := range list {
				if b.Name == testBroadcast && slices.Contains(b.Tracks, "video0") {
					t.Errorf("listArchive lists video0: %+v", list)
				}
			}
			if !strings.Contains(logs.String(), "WARN") || !strings.Contains(logs.String(), p.Path) {
				t.Errorf("no warning naming %s:\n%s", p.Path, &logs)
			}
			_, err = s.trackSegments(context.Background(), testBroadcast, "video0", nil, timeRange{}, false)
			p.Refused("trackSegments", err)
		}
	})
}
