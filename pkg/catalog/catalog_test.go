package catalog

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		tracks  []string
		init    map[string]string
		kinds   map[string]string // Container
		skipped []string
	}{
		{
			name: "moq-cli fmp4 import",
			doc: `{"video":{"renditions":{"0.m4s":{"codec":"avc1.64001f","container":{"kind":"cmaf","init":"AAEC"}}}},
			       "audio":{"renditions":{"1.m4s":{"codec":"mp4a.40.2","sampleRate":48000,"numberOfChannels":2,"container":{"kind":"cmaf","init":"AwQ="}}}}}`,
			tracks: []string{"0.m4s", "1.m4s"},
			init:   map[string]string{"0.m4s": "\x00\x01\x02", "1.m4s": "\x03\x04"},
			kinds:  map[string]string{"0.m4s": "cmaf", "1.m4s": "cmaf"},
		},
		{
			name:   "legacy container by default, text and archive tracks",
			doc:    `{"video":{"renditions":{"video0":{"codec":"avc1"}}},"text":{"renditions":{"captions":{"format":"webvtt"}}},"archive":{"track":"timeline"}}`,
			tracks: []string{"captions", "timeline", "video0"},
			kinds:  map[string]string{"captions": "legacy", "video0": "legacy"},
		},
		{
			name:    "renditions elsewhere or in unknown containers are skipped",
			doc:     `{"video":{"renditions":{"a":{"broadcast":"../other"},"b":{"container":{"kind":"future"}},"c":{}}}}`,
			tracks:  []string{"c"},
			kinds:   map[string]string{"c": "legacy"},
			skipped: []string{"a", "b"},
		},
		{
			name: "old array schema and unknown sections are ignored",
			doc:  `{"video":[{"track":{"name":"x"}}],"chat":{"renditions":{"m":{}}},"user":{"name":"n"}}`,
		},
		{name: "empty object", doc: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Tracks, tt.tracks) {
				t.Errorf("tracks = %q, want %q", c.Tracks, tt.tracks)
			}
			for name, want := range tt.init {
				if got := c.Init[name]; !bytes.Equal(got, []byte(want)) {
					t.Errorf("init[%s] = %x, want %x", name, got, want)
				}
			}
			if len(c.Container) != len(tt.kinds) || len(tt.kinds) > 0 && !reflect.DeepEqual(c.Container, tt.kinds) {
				t.Errorf("containers = %q, want %q", c.Container, tt.kinds)
			}
			if len(c.Init) != len(tt.init) {
				t.Errorf("init has %d entries, want %d", len(c.Init), len(tt.init))
			}
			for _, name := range tt.skipped {
				if c.Skipped[name] == "" {
					t.Errorf("%s not reported as skipped", name)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	many := `{"video":{"renditions":{` + strings.TrimSuffix(manyTracks(MaxTracks+1), ",") + `}}}`
	tests := map[string][]byte{
		"not json":       []byte(`{"video":`),
		"too large":      bytes.Repeat([]byte(" "), MaxSize+1),
		"too many":       []byte(many),
		"wrong type":     []byte(`{"video":{"renditions":[1,2]}}`),
		"top-level list": []byte(`[1]`),
	}
	for name, doc := range tests {
		if _, err := Parse(doc); err == nil {
			t.Errorf("%s: Parse succeeded, want error", name)
		}
	}
	c, err := Parse([]byte(`{"video":{"renditions":{"v":{"container":{"kind":"cmaf","init":"!!"}}}}}`))
	if err != nil || c.Skipped["v"] == "" {
		t.Errorf("bad base64 init: err=%v skipped=%q, want skipped", err, c.Skipped)
	}
}

func manyTracks(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `"track%d":{},`, i)
	}
	return b.String()
}
