package serve

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/every-channel/ec-node/pkg/catalog"
)

// apiBroadcast is a broadcast in the JSON API.
type apiBroadcast struct {
	Name   string     `json:"name"`
	HLS    string     `json:"hls"` // the multivariant playlist (EVENT)
	Tracks []apiTrack `json:"tracks"`
}

// apiTrack is a track's time coverage: runs of consecutive groups and the
// gaps between them, wall-clock Unix ms (a run from its first group's start
// to its last group's receive time).
type apiTrack struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind,omitempty"` // video or audio, from the catalog
	Codec     string   `json:"codec,omitempty"`
	Container string   `json:"container,omitempty"`
	Groups    int      `json:"groups"`
	Coverage  []apiRun `json:"coverage"`
	Gaps      []apiGap `json:"gaps"`
}

type apiRun struct {
	From   int64 `json:"from"`
	To     int64 `json:"to"`
	Groups int   `json:"groups"`
}

type apiGap struct {
	From   int64  `json:"from"`
	To     int64  `json:"to"`
	Reason string `json:"reason"`
}

func hlsURL(name string) string { return "/hls/" + url.PathEscape(name) + "/index.m3u8" }

// apiBroadcasts serves /api/broadcasts: every archived broadcast and its tracks.
func (s *Server) apiBroadcasts(w http.ResponseWriter, r *http.Request) {
	all, err := s.listArchive()
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	out := []apiBroadcast{}
	for _, b := range all {
		ab := apiBroadcast{Name: b.Name, HLS: hlsURL(b.Name), Tracks: []apiTrack{}}
		for _, t := range b.Tracks {
			ab.Tracks = append(ab.Tracks, apiTrack{Name: t})
		}
		out = append(out, ab)
	}
	writeJSON(w, out)
}

// apiBroadcast serves /api/broadcasts/{b}: each media track's coverage and gaps.
func (s *Server) apiBroadcast(w http.ResponseWriter, r *http.Request) {
	b, err := s.broadcast(r.PathValue("b"))
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	cats, err := s.catalogs(r.Context(), b.Name)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	out := apiBroadcast{Name: b.Name, HLS: hlsURL(b.Name), Tracks: []apiTrack{}}
	for _, t := range b.Tracks {
		if t == catalog.TrackName {
			continue
		}
		at := apiTrack{Name: t, Coverage: []apiRun{}, Gaps: []apiGap{}}
		if len(cats) > 0 {
			x := cats[len(cats)-1].Renditions[t]
			at.Kind, at.Codec, at.Container = x.Kind, x.Codec, x.Container
		}
		segs, err := s.trackSegments(r.Context(), b.Name, t, cats, timeRange{}, false)
		if err != nil {
			s.httpError(w, r, err)
			return
		}
		at.Groups = len(segs)
		for _, g := range segs {
			start, end := g.Start().UnixMilli(), g.Entry.ReceivedUnixMs
			n := len(at.Coverage)
			if n == 0 || g.Discontinuity {
				if n > 0 {
					at.Gaps = append(at.Gaps, apiGap{From: at.Coverage[n-1].To, To: start, Reason: g.Why})
				}
				at.Coverage = append(at.Coverage, apiRun{From: start})
				n++
			}
			run := &at.Coverage[n-1]
			run.To = max(run.To, end)
			run.Groups++
		}
		out.Tracks = append(out.Tracks, at)
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a write error is the client gone
}
