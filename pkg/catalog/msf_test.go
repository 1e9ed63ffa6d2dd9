package catalog

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseMSF(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		tracks  []string
		kinds   map[string]string // Container
		skipped []string
	}{
		{
			name: "draft-00: numeric version, cmaf with inline initData (not read)",
			doc: `{"version":1,"generatedAt":1767225600000,"tracks":[
			  {"name":"video0","packaging":"cmaf","isLive":true,"role":"video","codec":"avc1.640028","initData":"AAEC","renderGroup":1},
			  {"name":"audio0","packaging":"cmaf","isLive":true,"role":"audio","codec":"opus","samplerate":48000}]}`,
			tracks: []string{"audio0", "video0"},
			kinds:  map[string]string{"audio0": "cmaf", "video0": "cmaf"},
		},
		{
			name:   "draft-01: string version, loc, timelines and unknown packagings archived",
			doc:    `{"version":"1","tracks":[{"name":"v","packaging":"loc"},{"name":"tl","packaging":"mediatimeline"},{"name":"x","packaging":"future"}]}`,
			tracks: []string{"tl", "v", "x"},
			kinds:  map[string]string{"v": "loc"},
		},
		{
			name:    "other namespaces and bad names are skipped",
			doc:     `{"version":1,"tracks":[{"name":"a","namespace":"live/other"},{"name":"b","namespace":"live/alice"},{"name":""}]}`,
			tracks:  []string{"b"},
			skipped: []string{"a", ""},
		},
		{
			name: "draft-01 as moq-relay 0.17.8 serves it",
			doc: `{"version":"draft-01","tracks":[{"name":"0.m4s","packaging":"cmaf","initRef":"init0","isLive":true,"role":"video"}],
			       "initDataList":[{"id":"init0","type":"inline","data":"AAEC"}]}`,
			tracks: []string{"0.m4s"},
			kinds:  map[string]string{"0.m4s": "cmaf"},
		},
		{name: "no tracks", doc: `{"version":1,"tracks":[]}`},
		{name: "deltaUpdate false is a full catalog", doc: `{"version":1,"deltaUpdate":false,"tracks":[{"name":"v"}]}`, tracks: []string{"v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseMSF([]byte(tt.doc), "live/alice")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Tracks, tt.tracks) {
				t.Errorf("tracks = %q, want %q", c.Tracks, tt.tracks)
			}
			if len(c.Container) != len(tt.kinds) || len(tt.kinds) > 0 && !reflect.DeepEqual(c.Container, tt.kinds) {
				t.Errorf("containers = %q, want %q", c.Container, tt.kinds)
			}
			if len(c.Init) != 0 {
				t.Errorf("init read for %d tracks, want none", len(c.Init))
			}
			for _, name := range tt.skipped {
				if c.Skipped[name] == "" {
					t.Errorf("%q not reported as skipped", name)
				}
			}
		})
	}
}

func TestParseMSFRejects(t *testing.T) {
	var many strings.Builder
	for i := range MaxTracks + 1 {
		fmt.Fprintf(&many, `{"name":"t%d"},`, i)
	}
	tests := map[string]string{
		"not json":            `{"version":`,
		"too large":           strings.Repeat(" ", MaxSize+1),
		"top-level list":      `[1]`,
		"no version":          `{"tracks":[]}`,
		"version zero":        `{"version":0,"tracks":[]}`,
		"version fraction":    `{"version":1.5,"tracks":[]}`,
		"version object":      `{"version":{},"tracks":[]}`,
		"version empty":       `{"version":"","tracks":[]}`,
		"version null":        `{"version":null,"tracks":[]}`,
		"no tracks":           `{"version":1}`,
		"tracks not an array": `{"version":1,"tracks":{"name":"v"}}`,
		"track without name":  `{"version":1,"tracks":[{"packaging":"loc"}]}`,
		"name not a string":   `{"version":1,"tracks":[{"name":7}]}`,
		"duplicate name":      `{"version":1,"tracks":[{"name":"v"},{"name":"v"}]}`,
		"delta update":        `{"version":1,"deltaUpdate":true,"addTracks":[{"name":"v"}]}`,
		"not UTF-8":           `{"version":1,"tracks":[{"name":"` + "\xff" + `"}]}`,
		"too many":            `{"version":1,"tracks":[` + strings.TrimSuffix(many.String(), ",") + `]}`,
	}
	for name, doc := range tests {
		if _, err := ParseMSF([]byte(doc), "b"); err == nil {
			t.Errorf("%s: ParseMSF succeeded, want error", name)
		}
	}
}
