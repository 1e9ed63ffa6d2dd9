package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Playlists are written by hand: the tags used (EXT-X-MAP, EXT-X-PROGRAM-DATE-TIME,
// EXT-X-DISCONTINUITY, EXT-X-MEDIA, EXT-X-PLAYLIST-TYPE) are few and fixed, see docs/serve.md.

// parseRange reads ?from=&to= (RFC 3339 or Unix ms). A playlist with to is
// VOD (closed); without, an EVENT playlist that grows with the archive.
func parseRange(q url.Values) (timeRange, error) {
	var rng timeRange
	for _, p := range []struct {
		name string
		v    *int64
	}{{"from", &rng.From}, {"to", &rng.To}} {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
			*p.v = ms
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return rng, fmt.Errorf("%s: %q is neither RFC 3339 nor Unix milliseconds", p.name, s)
		}
		*p.v = t.UnixMilli()
	}
	if rng.To != 0 && rng.To < rng.From {
		return rng, errors.New("to precedes from")
	}
	return rng, nil
}

// rangeQuery is the query string passing a range on to linked playlists.
func rangeQuery(q url.Values) string {
	v := url.Values{}
	for _, k := range []string{"from", "to"} {
		if s := q.Get(k); s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// httpError answers a failed playlist or API request.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNotFound), errors.Is(err, fs.ErrNotExist):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, errBadRequest):
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		s.log.Error("archive-serve: request failed", "path", r.URL.Path, "err", err)
		http.Error(w, "archive-serve: "+err.Error(), http.StatusInternalServerError)
	}
}

var errBadRequest = errors.New("bad request")

// playlistTrack is one track of a multivariant playlist.
type playlistTrack struct {
	name string
	r    rendition
	segs []segment
}

// mediaTracks returns the broadcast's cmaf tracks (only the one named, if
// only is not "") that have segments in rng, typed by the latest catalog
// naming them that was received by the range's end.
func (s *Server) mediaTracks(r *http.Request, rng timeRange, only string) ([]playlistTrack, error) {
	b, err := s.broadcast(r.PathValue("b"))
	if err != nil {
		return nil, err
	}
	cats, err := s.catalogs(r.Context(), b.Name)
	if err != nil {
		return nil, err
	}
	var out []playlistTrack
	for _, t := range b.Tracks {
		if only != "" && t != only || t == "." || t == ".." {
			continue // "." and ".." cannot be a path segment of a playlist URI
		}
		var latest *rendition
		for _, c := range cats {
			if x, ok := c.Renditions[t]; ok && (latest == nil || rng.To == 0 || c.Received <= rng.To) {
				latest = &x
			}
		}
		if latest == nil || latest.Container != "cmaf" {
			continue
		}
		segs, err := s.trackSegments(r.Context(), b.Name, t, cats, rng, rng.To == 0)
		if err != nil {
			return nil, err
		}
		if len(segs) > 0 {
			out = append(out, playlistTrack{name: t, r: *latest, segs: segs})
		}
	}
	return out, nil
}

// peakBitrate is the highest segment bitrate of a track, bits per second.
func peakBitrate(segs []segment) int {
	peak := 0.0
	for _, g := range segs {
		if g.Duration > 0 {
			peak = max(peak, float64(g.Entry.Size)*8/g.Duration)
		}
	}
	return int(math.Ceil(peak))
}

// multivariant serves /hls/{b}/index.m3u8: one variant per video track, the
// audio tracks as one group of alternative renditions.
func (s *Server) multivariant(w http.ResponseWriter, r *http.Request) {
	rng, err := parseRange(r.URL.Query())
	if err != nil {
		s.httpError(w, r, fmt.Errorf("%w: %w", errBadRequest, err))
		return
	}
	tracks, err := s.mediaTracks(r, rng, "")
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if len(tracks) == 0 {
		s.httpError(w, r, fmt.Errorf("broadcast %q: no cmaf track in the range: %w", r.PathValue("b"), errNotFound))
		return
	}
	q := rangeQuery(r.URL.Query())
	var buf bytes.Buffer
	buf.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	var audio, video []playlistTrack
	for _, t := range tracks {
		if t.r.Kind == "audio" {
			audio = append(audio, t)
		} else {
			video = append(video, t)
		}
	}
	audioBits, audioCodec := 0, ""
	for i, t := range audio {
		def := "NO"
		if i == 0 {
			def = "YES"
			audioBits, audioCodec = peakBitrate(t.segs), t.r.Codec
		}
		fmt.Fprintf(&buf, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=%s,DEFAULT=%s,AUTOSELECT=YES,URI=%s\n",
			quote(t.name), def, quote(url.PathEscape(t.name)+"/index.m3u8"+q))
	}
	if len(video) == 0 { // an audio-only broadcast: its first audio track is the variant
		video, audio = audio[:1], nil
		audioBits, audioCodec = 0, ""
	}
	for _, t := range video {
		fmt.Fprintf(&buf, "#EXT-X-STREAM-INF:BANDWIDTH=%d", peakBitrate(t.segs)+audioBits)
		codecs := []string{t.r.Codec}
		if len(audio) > 0 {
			codecs = append(codecs, audioCodec)
		}
		if !slices.Contains(codecs, "") { // CODECS only when all are known
			fmt.Fprintf(&buf, ",CODECS=%s", quote(strings.Join(codecs, ",")))
		}
		if len(audio) > 0 {
			buf.WriteString(`,AUDIO="audio"`)
		}
		fmt.Fprintf(&buf, "\n%s/index.m3u8%s\n", url.PathEscape(t.name), q)
	}
	writePlaylist(w, r, buf.Bytes())
}

// quote is an HLS quoted-string: no double quote or line break inside.
func quote(s string) string {
	return `"` + strings.NewReplacer(`"`, "'", "\n", " ", "\r", " ").Replace(s) + `"`
}

// mediaPlaylist serves /hls/{b}/{t}/index.m3u8.
func (s *Server) mediaPlaylist(w http.ResponseWriter, r *http.Request) {
	rng, err := parseRange(r.URL.Query())
	if err != nil {
		s.httpError(w, r, fmt.Errorf("%w: %w", errBadRequest, err))
		return
	}
	tracks, err := s.mediaTracks(r, rng, r.PathValue("t"))
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if len(tracks) == 0 {
		s.httpError(w, r, fmt.Errorf("track %q of %q: no cmaf segment in the range: %w", r.PathValue("t"), r.PathValue("b"), errNotFound))
		return
	}
	writePlaylist(w, r, mediaPlaylist(tracks[0].segs, rng.To != 0))
}

// mediaPlaylist writes a media playlist: EVENT, or VOD (with ENDLIST) when
// closed. Segment and init URIs are relative to /hls/{b}/{t}/.
func mediaPlaylist(segs []segment, closed bool) []byte {
	var buf bytes.Buffer
	target := 1
	for _, g := range segs {
		target = max(target, int(math.Ceil(g.Duration-1e-9)))
	}
	kind := "EVENT"
	if closed {
		kind = "VOD"
	}
	// EXT-X-START:TIME-OFFSET=0: a range plays from its start, also as an EVENT
	// playlist, which players otherwise open at the live edge (hls.js then
	// stalls with alternate audio, docs/serve.md).
	fmt.Fprintf(&buf, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:%s\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=0\n", target, kind)
	for i, g := range segs {
		if g.Discontinuity {
			fmt.Fprintf(&buf, "#EXT-X-DISCONTINUITY\n")
		}
		if i == 0 || g.Init != segs[i-1].Init {
			fmt.Fprintf(&buf, "#EXT-X-MAP:URI=\"../../../init/%s.mp4\"\n", g.Init)
		}
		if i == 0 || g.Discontinuity {
			fmt.Fprintf(&buf, "#EXT-X-PROGRAM-DATE-TIME:%s\n", g.Start().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		}
		fmt.Fprintf(&buf, "#EXTINF:%.6f,\n../../../objects/blake3/%s.m4s\n", g.Duration, g.ID)
	}
	if closed {
		buf.WriteString("#EXT-X-ENDLIST\n")
	}
	return buf.Bytes()
}

func writePlaylist(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", zeroTime, bytes.NewReader(body))
}
