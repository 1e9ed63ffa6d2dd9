package cas

import (
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/every-channel/ec-node/internal/safefs"
)

// Each calls fn for every well-named object file in the store:
// objects/blake3/<2 hex>/<64 hex>.bin with the shard matching the id. Anything
// else (including a symbolic link, which is not followed) is left to Verify,
// which reports it. It stops at fn's first error.
func (l *Local) Each(ctx context.Context, fn func(ID) error) error {
	shards, err := l.root.ReadDir(objectsDir)
	if err != nil {
		return err
	}
	for _, shard := range shards {
		if !shard.IsDir() || len(shard.Name()) != 2 {
			continue
		}
		names, err := l.root.ReadDir(objectsDir + "/" + shard.Name())
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !safefs.IsWrongKind(err) {
			return err
		}
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			id, err := ParseID(strings.TrimSuffix(n.Name(), ".bin"))
			if err != nil || !n.Type().IsRegular() || !strings.HasSuffix(n.Name(), ".bin") || id.String()[:2] != shard.Name() {
				continue
			}
			if err := fn(id); err != nil {
				return err
			}
		}
	}
	return nil
}
