//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/export"

	"github.com/every-channel/ec-node/pkg/record"
)

// TestArchiveServeRealPeers archives a live H.264+AAC broadcast from the real
// moq-relay with a gap in it (the relay is killed for 3 s) and then a
// publisher restart at another resolution (a catalog change), serves the
// archive with ec-node archive-serve on loopback, and plays it back:
//
//  1. ffprobe reads both streams from the multivariant playlist; ffmpeg
//     decodes a closed (VOD) range across the gap without a message; every
//     EXTINF matches its segment's fragment durations;
//  2. headless Chromium opens the page, which plays the broadcast with the
//     vendored hls.js from its start across the gap (an EXT-X-DISCONTINUITY):
//     video.currentTime advances past it, and a screenshot of the video shows
//     the test pattern (many distinct colours). The screenshot is kept under
//     $EC_ARTIFACTS (or a temp dir, logged);
//  3. the page plays from shortly before the publisher restart across it (a
//     discontinuity with a new EXT-X-MAP): currentTime advances past it and
//     the video is then at the new resolution.
func TestArchiveServeRealPeers(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		// CI installs chromium (.ci/run), so there a missing browser is a failure.
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not installed")
		}
		t.Skip("chromium not installed")
	}
	ecNode := buildBinary(t, "ec-node")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	const name = "serve/test.hang"
	relay, pub := startLive(t, ctx, dir, name)

	out := filepath.Join(dir, "archive")
	// A back-fill age of 2 s, shorter than the relay's 3 s outage and the
	// publisher's reconnect, leaves a gap (reason expired) at the relay restart.
	archiver := exec.Command(ecNode, "wt-archive", "--url", relay.URL("anon"), "--name", name,
		"--tls-fingerprint", relay.Fingerprint(), "--max-backoff", "1s", "--announce-wait", "10s", "--backfill-max-age", "2s",
		"--output-dir", out+"/cas", "--manifest-dir", out+"/manifests")
	archiver.Stderr = logFile(t, dir, "wt-archive.log")
	if err := archiver.Start(); err != nil {
		t.Fatal(err)
	}
	defer archiver.Process.Kill()
	videoGroups := func() (n int, first, last int64) {
		for _, e := range readManifest(t, out+"/manifests", name, "0.m4s") {
			if e.Kind == record.KindGroup {
				if n == 0 {
					first = e.ReceivedUnixMs
				}
				n, last = n+1, e.ReceivedUnixMs
			}
		}
		return n, first, last
	}
	waitFor(t, "8 video groups", time.Minute, func() (bool, string) { n, _, _ := videoGroups(); return n >= 8, strconv.Itoa(n) })
	if err := relay.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := relay.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	beforeGap, _, _ := videoGroups()
	waitFor(t, "10 video groups after the relay restart", time.Minute, func() (bool, string) {
		n, _, _ := videoGroups()
		return n >= beforeGap+10, strconv.Itoa(n)
	})
	_, first, last := videoGroups() // the range across the gap

	if err := pub.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now().UnixMilli()
	// Three groups before the publisher restart. Not restarted less 3 s: groups
	// taken from the relay's cache all carry the time of the catch-up.
	var oldSession []int64
	for _, e := range readManifest(t, out+"/manifests", name, "0.m4s") {
		if e.Kind == record.KindGroup {
			oldSession = append(oldSession, e.ReceivedUnixMs)
		}
	}
	beforeRestart := oldSession[len(oldSession)-3]
	if err := os.Mkdir(filepath.Join(dir, "pub2"), 0o755); err != nil {
		t.Fatal(err)
	}
	pub2, err := peers.StartPublisher(ctx, relay, name, t.Logf, peers.PublisherOptions{LogDir: filepath.Join(dir, "pub2"), Size: "160x120"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub2.Kill() })
	waitFor(t, "8 video groups of the new publisher", time.Minute, func() (bool, string) {
		_, _, l := videoGroups()
		n, _, _ := videoGroups()
		return l > restarted && n >= beforeGap+18, strconv.Itoa(n)
	})

	// The archiver keeps writing: the EVENT playlists grow meanwhile.
	addr := freeAddr(t)
	server := exec.CommandContext(ctx, ecNode, "archive-serve", "--listen", addr,
		"--root", out+"/cas", "--manifest-dir", out+"/manifests")
	server.Stderr = logFile(t, dir, "archive-serve.log")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer server.Process.Kill()
	base := "http://" + addr
	waitFor(t, "archive-serve to answer", 30*time.Second, func() (bool, string) {
		resp, err := http.Get(base + "/api/broadcasts")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	master := base + "/hls/" + url.PathEscape(name) + "/index.m3u8"

	// 1. ffprobe and ffmpeg on the playlists.
	probe, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", master).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", master, err, readFile(dir, "archive-serve.log"))
	}
	streams := strings.Fields(string(probe))
	if !slices.Contains(streams, "video") || !slices.Contains(streams, "audio") {
		t.Errorf("ffprobe %s: streams %q, want video and audio", master, streams)
	}
	t.Logf("ffprobe %s: streams %q", master, streams)
	videoPlaylist := httpGet(t, base+"/hls/"+url.PathEscape(name)+"/0.m4s/index.m3u8")
	if strings.Count(videoPlaylist, "#EXT-X-DISCONTINUITY\n") != 2 || strings.Count(videoPlaylist, "#EXT-X-MAP:") != 2 {
		t.Errorf("the video playlist does not have 2 discontinuities (relay restart, publisher restart) and 2 init segments:\n%s", videoPlaylist)
	}
	var api struct {
		Tracks []struct {
			Name string
			Gaps []struct {
				From, To int64
				Reason   string
			}
		}
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/api/broadcasts/"+url.PathEscape(name))), &api); err != nil {
		t.Fatal(err)
	}
	for _, tr := range api.Tracks {
		if tr.Name == "0.m4s" || tr.Name == "1.m4s" {
			expired := slices.ContainsFunc(tr.Gaps, func(g struct {
				From, To int64
				Reason   string
			}) bool {
				return g.Reason == record.GapExpired
			})
			if !expired {
				t.Errorf("API: track %q has no gap of reason %s at the relay restart", tr.Name, record.GapExpired)
			}
		}
		for _, g := range tr.Gaps {
			t.Logf("API: track %q: gap of %d ms (%s)", tr.Name, g.To-g.From, g.Reason)
		}
	}
	vod := fmt.Sprintf("%s?from=%d&to=%d", master, first, last)
	start := time.Now()
	decode, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", vod, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(decode)) > 0 {
		t.Errorf("ffmpeg decode of %s: %v\n%s", vod, err, decode)
	}
	t.Logf("ffmpeg decoded the VOD range (%.1f s of receive time) cleanly in %s", float64(last-first)/1000, time.Since(start).Round(time.Millisecond))

	across := fmt.Sprintf("%s?from=%d&to=%d", master, beforeRestart-1000, time.Now().UnixMilli())
	decode, err = exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", across, "-f", "null", "-").CombinedOutput()
	// Not asserted: ffmpeg's HLS demuxer keeps decoding with the first
	// EXT-X-MAP's codec configuration (docs/serve.md); hls.js switches (3. below).
	t.Logf("ffmpeg decode across the publisher restart (%s): %v, %d lines of messages, the first: %q",
		across, err, bytes.Count(decode, []byte("\n")), bytes.SplitN(decode, []byte("\n"), 2)[0])

	// EXTINF against the segments' own fragment durations.
	withTimestamps := 0
	for _, e := range readManifest(t, out+"/manifests", name, "0.m4s") {
		if e.Timescale > 0 {
			withTimestamps++
		}
	}
	for _, track := range []string{"0.m4s", "1.m4s"} {
		n, worst := checkDurations(t, fmt.Sprintf("%s/hls/%s/%s/index.m3u8?to=%d", base, url.PathEscape(name), track, time.Now().UnixMilli()))
		t.Logf("track %s: %d EXTINF within %.6f s of their segments' trun durations (video lines with timestamps: %d)", track, n, worst, withTimestamps)
	}

	// 2. A real browser plays it from the page.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1000, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	// The first Run starts the browser, bound to the context it is given:
	// this one, not play's shorter one for loading a page.
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium: start: %v", err)
	}
	playPage := func(page string, until float64) ([]float64, string) {
		times, state, err := play(bctx, page, until)
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return times, state
	}
	// beforeGap groups of 1 s precede the discontinuity.
	times, state := playPage(base+"/?b="+url.QueryEscape(name), float64(beforeGap)+4)
	t.Logf("chromium played %.2f s of the archive, across the gap after %d s (%s); currentTime samples %v", times[len(times)-1], beforeGap, state, times)

	shot, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID("video")))
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	artifacts := os.Getenv("EC_ARTIFACTS")
	if artifacts == "" {
		artifacts, err = os.MkdirTemp("", "ec-serve-artifacts-")
		if err != nil {
			t.Fatal(err)
		}
	}
	shotPath := filepath.Join(artifacts, "archive-serve-chromium.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s: %v", shotPath, err)
	}
	colours := distinctColours(img)
	t.Logf("screenshot %s: %v, %d distinct colours", shotPath, img.Bounds().Size(), colours)
	// testsrc is a colour pattern with a moving gradient and digits: hundreds
	// of colours; a black or frozen-blank video has one or two.
	if colours < 50 {
		t.Errorf("screenshot %s has %d distinct colours: not the test pattern", shotPath, colours)
	}

	// 3. Across the publisher restart: 3 groups before it, then 4 s past it.
	// When the audio's first segment begins after the video's, this page is the
	// case EXT-X-START is for (docs/serve.md): logged, as it varies from run to run.
	for _, track := range []string{"0.m4s", "1.m4s"} {
		playlist := httpGet(t, fmt.Sprintf("%s/hls/%s/%s/index.m3u8?from=%d", base, url.PathEscape(name), track, beforeRestart))
		first, _, _ := strings.Cut(strings.SplitN(playlist, "#EXT-X-PROGRAM-DATE-TIME:", 2)[1], "\n")
		t.Logf("track %s from %d: first segment at %s", track, beforeRestart, first)
	}
	times, state = playPage(base+"/?b="+url.QueryEscape(name)+"&from="+strconv.FormatInt(beforeRestart, 10), 7)
	width, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById("video").videoWidth`))
	if err != nil || width != 160 {
		t.Errorf("after the publisher restart the video is %d pixels wide (%v), want 160 (%s)", width, err, state)
	}
	t.Logf("chromium played %.2f s from 3 groups before the publisher restart, now at width %d (%s); currentTime samples %v", times[len(times)-1], width, state, times)

	if err := archiver.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := archiver.Wait(); err != nil {
		t.Errorf("wt-archive: %v", err)
	}
	if err := server.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := server.Wait(); err != nil {
		t.Errorf("archive-serve: %v\n%s", err, readFile(dir, "archive-serve.log"))
	}
	if log := readFile(dir, "archive-serve.log"); strings.Contains(log, "level=ERROR") {
		t.Errorf("archive-serve logged errors:\n%s", log)
	}
}

// play opens page in the browser and samples video.currentTime until it
// reaches until; after 60 s to load the page or 90 s to play, it fails with
// the video's state and what the page wrote to its console. It returns the
// samples and the video's state.
func play(bctx context.Context, page string, until float64) (times []float64, state string, err error) {
	var (
		mu      sync.Mutex
		console []string
	)
	lctx, stopListening := context.WithCancel(bctx)
	defer stopListening()
	go func() {
		for m, err := range chromedp.Console(lctx) {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m.String())
			mu.Unlock()
		}
	}()
	load, cancel := context.WithTimeout(bctx, time.Minute)
	_, err = chromedp.Run(load, chromedp.Navigate(page))
	cancel()
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", page, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		now, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementById("video").currentTime`))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", page, err)
		}
		times = append(times, now)
		if now >= until || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	state, _ = chromedp.Run(bctx, chromedp.Evaluate[string](`(() => { const v = document.getElementById("video");
		return "readyState " + v.readyState + ", paused " + v.paused + ", error " + (v.error && v.error.message) +
			", buffered " + (v.buffered.length ? v.buffered.start(0) + "-" + v.buffered.end(v.buffered.length-1) : "none"); })()`))
	if got := times[len(times)-1]; got < until {
		mu.Lock()
		defer mu.Unlock()
		return nil, "", fmt.Errorf("%s: video.currentTime reached %.2f s in 90 s, want %.2f s (%s); samples %v; console:\n%s", page, got, until, state, times, strings.Join(console, "\n"))
	}
	return times, state, nil
}

// checkDurations compares each EXTINF of a media playlist with the duration
// of its segment's fragments (export.Span against the EXT-X-MAP in force):
// they must agree within 1 ms. It returns the segment count and the largest
// difference.
func checkDurations(t *testing.T, playlist string) (n int, worst float64) {
	t.Helper()
	resolve := func(ref string) string {
		u, _ := url.Parse(playlist)
		r, err := u.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		return r.String()
	}
	var init []byte
	var extinf float64
	for _, line := range strings.Split(httpGet(t, playlist), "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
			init = []byte(httpGet(t, resolve(strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`))))
		case strings.HasPrefix(line, "#EXTINF:"):
			extinf, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
		case line != "" && !strings.HasPrefix(line, "#"):
			_, dur, scale, err := export.Span(init, []byte(httpGet(t, resolve(line))))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			diff := math.Abs(extinf - float64(dur)/float64(scale))
			if diff > 0.001 {
				t.Errorf("%s: EXTINF %.6f, its fragments last %.6f s", line, extinf, float64(dur)/float64(scale))
			}
			n, worst = n+1, max(worst, diff)
		}
	}
	if n == 0 {
		t.Errorf("%s: no segment", playlist)
	}
	return n, worst
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(body)
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// distinctColours counts the distinct RGB colours of an image.
func distinctColours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}
