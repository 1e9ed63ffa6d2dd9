package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/every-channel/ec-node/pkg/catalog"
)

// TestReadTrack splits a 3 s CMAF file of 1 s GOPs at 30 fps: three groups of
// 30 fragments whose bytes, after the init segment, are the file's; and the
// catalog names it as a cmaf rendition with that init segment.
func TestReadTrack(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	path := filepath.Join(t.TempDir(), "video.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30",
		"-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-f", "mp4", "-movflags", "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	tr, err := readTrack(path, "0.m4s")
	if err != nil {
		t.Fatal(err)
	}
	if tr.handler != "vide" || len(tr.groups) != 3 {
		t.Fatalf("handler %q, %d groups; want vide, 3", tr.handler, len(tr.groups))
	}
	joined := tr.init
	for k, g := range tr.groups {
		if len(g) != 30 {
			t.Errorf("group %d: %d fragments, want 30", k, len(g))
		}
		joined = append(joined, bytes.Join(g, nil)...)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(joined, file) {
		t.Errorf("init + fragments: %d bytes differing from the file's %d", len(joined), len(file))
	}
	doc, err := catalogDoc([]track{tr})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if c.Container["0.m4s"] != "cmaf" || !bytes.Equal(c.Init["0.m4s"], tr.init) {
		t.Errorf("catalog: container %q, init of %d bytes; want cmaf, %d", c.Container["0.m4s"], len(c.Init["0.m4s"]), len(tr.init))
	}
}
