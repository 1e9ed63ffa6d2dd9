package replay_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/internal/manifesttest"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/replay"
)

// TestLoadRefusesLinksAndSpecialFiles: a link or FIFO among the broadcast's
// manifests fails the load, naming it (a replay without one of its tracks
// would publish holes nobody recorded); the link is not followed, the FIFO
// does not block.
func TestLoadRefusesLinksAndSpecialFiles(t *testing.T) {
	for _, hz := range manifesttest.Hazards {
		t.Run(hz.Name, func(t *testing.T) {
			f := newFixture(t)
			f.standard()
			rel, _ := manifest.FilePath("", "live/show", "v")
			bad := hz.Plant(t, f.manifest, rel)
			manifesttest.Finish(t, func() {
				a, err := replay.Load(f.manifest, "live/show")
				if !errors.Is(err, hz.Want) || !strings.Contains(err.Error(), bad) {
					t.Errorf("Load: %+v, %v; want %v naming %s", a, err, hz.Want, bad)
				}
			})
		})
	}
}
