package serve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/manifest"
)

// TestArchiveRefusesLinksAndSpecialFiles: the listing passes over a link or
// special file in the manifest tree with a warning naming it (one bad file
// must not take every broadcast off the air); reading it as a track is an
// error naming it. Neither follows the link nor blocks on the FIFO.
func TestArchiveRefusesLinksAndSpecialFiles(t *testing.T) {
	for _, hz := range manifesttest.Hazards {
		t.Run(hz.Name, func(t *testing.T) {
			a, _ := fixture(t)
			rel, _ := manifest.FilePath("", testBroadcast, "video0")
			bad := hz.Plant(t, a.manifest, rel)
			var logs bytes.Buffer
			s := New(Options{ManifestDir: a.manifest, Store: a.store, StoreRoot: a.root, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			manifesttest.Finish(t, func() {
				list, err := s.listArchive()
				if err != nil {
					t.Errorf("listArchive: %v", err)
				}
				for _, b := range list {
					if b.Name == testBroadcast && slices.Contains(b.Tracks, "video0") {
						t.Errorf("listArchive lists video0: %+v", list)
					}
				}
				if !strings.Contains(logs.String(), "WARN") || !strings.Contains(logs.String(), bad) {
					t.Errorf("no warning naming %s:\n%s", bad, &logs)
				}
				_, err = s.trackSegments(context.Background(), testBroadcast, "video0", nil, timeRange{}, false)
				if !errors.Is(err, hz.Want) || !strings.Contains(err.Error(), bad) {
					t.Errorf("trackSegments: %v, want %v naming %s", err, hz.Want, bad)
				}
			})
		})
	}
}
