package command

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// bigHeader is a group header with the longest names, of U+2028 (which JSON
// encodes as "\u2028", 6 bytes for 3), and the most frames, all timestamped;
// its payload is "abc".
func bigHeader() record.Header {
	name := strings.Repeat("\u2028", record.MaxName/3)
	h := record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: name, Track: name,
		Group: 1, Frames: make([]int64, record.MaxFrames), Size: 3,
		Timescale: 1000, Timestamps: make([]int64, record.MaxFrames), ReceivedUnixMs: 1700000000000}
	h.Frames[0] = 3
	return h
}

func encodeHeader(t *testing.T, h record.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := record.EncodeLine(&buf, h); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// reviewCase is the header from the review that cas-put used to store and
// manifest-append then refused: under 1 MiB as written (U+2028 unescaped), but
// over MaxHeaderLine once encoded, as cas-put prints it.
func reviewCase(t *testing.T) []byte {
	h := bigHeader()
	raw := func() []byte { return bytes.ReplaceAll(encodeHeader(t, h), []byte(`\u2028`), []byte("\u2028")) }
	for i := range h.Timestamps {
		h.Timestamps[i] = 1e9
	}
	for i := range record.MaxHeaderLine - 100 - len(raw()) {
		h.Timestamps[i] = 1e10 // one digit more
	}
	line := raw()
	if n, enc := len(line), len(encodeHeader(t, h)); n > record.MaxHeaderLine || enc <= record.MaxHeaderLine {
		t.Fatalf("review case: %d bytes written, %d encoded; want at most and over %d", n, enc, record.MaxHeaderLine)
	}
	return line
}

// largestCase is a header whose encoding is exactly MaxHeaderLine bytes.
func largestCase(t *testing.T) []byte {
	h := bigHeader()
	h.Broadcast = ""
	// Lengthen timestamps (0 to 1e10: 10 bytes each) to leave room for a
	// broadcast name of half MaxName, then pad the name to the byte.
	room := record.MaxHeaderLine - len(encodeHeader(t, h)) - record.MaxName/2
	for i := range room / 10 {
		h.Timestamps[i] = 1e10
	}
	h.Broadcast = strings.Repeat("b", record.MaxHeaderLine-len(encodeHeader(t, h)))
	line := encodeHeader(t, h)
	if len(line) != record.MaxHeaderLine || len(h.Broadcast) > record.MaxName {
		t.Fatalf("largest case: %d bytes, name %d bytes", len(line), len(h.Broadcast))
	}
	return line
}

// TestPipelineStagesAgreeOnLimits runs cas-put --records and manifest-append
// on a good record followed by a record at the limit: either cas-put rejects
// it (exit 65) before storing its payload, or both stages accept it.
func TestPipelineStagesAgreeOnLimits(t *testing.T) {
	tests := []struct {
		name     string
		header   []byte
		accepted bool
	}{
		{"review case: long Unicode names, 65,536 frames", reviewCase(t), false},
		{"largest header", largestCase(t), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, manifests := t.TempDir(), t.TempDir()
			stream := append(recordStream(t, "first"), tt.header...)
			stream = append(stream, "\nabc\n"...)
			entries, stderr, code := runStage(t, CASPut(), bytes.NewReader(stream), "--root", root, "--records")
			want := map[bool]int{true: ExitOK, false: ExitDataErr}[tt.accepted]
			if code != want {
				t.Fatalf("cas-put: code %d, want %d: %s", code, want, stderr)
			}
			if !tt.accepted && (!strings.Contains(stderr, "record 3 at byte") || !strings.Contains(stderr, "header encodes to")) {
				t.Fatalf("cas-put: %s, want the error located at record 3", stderr)
			}
			if n, want := objectCount(t, root), map[bool]int{true: 2, false: 1}[tt.accepted]; n != want {
				t.Fatalf("%d objects stored, want %d", n, want)
			}
			_, stderr, code = runStage(t, ManifestAppend(), strings.NewReader(entries), "--manifest-dir", manifests)
			if code != ExitOK {
				t.Fatalf("manifest-append of cas-put's %d lines: code %d: %s", strings.Count(entries, "\n"), code, stderr)
			}
			files, _ := filepath.Glob(filepath.Join(manifests, "*", "*.jsonl"))
			lines := 0
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				dec := manifest.NewDecoder(bytes.NewReader(data))
				for {
					if _, err := dec.Next(); err != nil {
						break
					}
					lines++
				}
			}
			if want := map[bool]int{true: 3, false: 2}[tt.accepted]; lines != want {
				t.Fatalf("%d manifest lines in %d files, want %d", lines, len(files), want)
			}
		})
	}
}
