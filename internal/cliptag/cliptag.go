// Package cliptag derives many distinct broadcasts from one archived
// recording, for load tests (scripts/load.sh, e2e TestLoadShort): N replays of
// one clip are otherwise N streams of identical groups, and an archiver's store
// writes only the first of each (a dedup hit for the rest), which understates
// its write path N times.
package cliptag

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// FreeBoxSize is the ISO-BMFF free box Derive appends: size, type, and the
// copy's index.
const FreeBoxSize = 16

// Derive writes copies first .. first+n-1 of the archived broadcast from,
// copy i named fmt.Sprintf(nameFormat, i), into the same store and manifest
// root. Every CMAF group of a copy gets a free box carrying i after its first
// frame, so that no two copies share an object; other groups (catalog.json)
// and gap records are copied as they are.
func Derive(ctx context.Context, store *cas.Local, manifestDir, from, nameFormat string, first, n int) error {
	tree, err := manifest.OpenTree(manifestDir)
	if err != nil {
		return fmt.Errorf("cliptag: %w", err)
	}
	files, err := tree.Files(from, func(err error) error { return err })
	if err != nil {
		return fmt.Errorf("cliptag: %w", err)
	}
	if len(files) == 0 {
		return fmt.Errorf("cliptag: no manifest of %s under %s", from, manifestDir)
	}
	var tracks [][]manifest.Entry
	for _, rel := range files {
		es, err := tree.Read(rel)
		if err != nil {
			return fmt.Errorf("cliptag: %w", err)
		}
		tracks = append(tracks, es)
	}
	dir, err := manifest.OpenDir(manifestDir, 0, nil)
	if err != nil {
		return err
	}
	for i := first; i < first+n; i++ {
		broadcast := fmt.Sprintf(nameFormat, i)
		for _, es := range tracks {
			out := make([]manifest.Entry, 0, len(es))
			for _, e := range es {
				e.Broadcast = broadcast
				if e.Kind == record.KindGroup {
					if e, err = tagGroup(ctx, store, e, uint64(i)); err != nil {
						return fmt.Errorf("cliptag: %s: %w", broadcast, err)
					}
				}
				out = append(out, e)
			}
			if len(out) == 0 {
				continue
			}
			if _, err := dir.Append(broadcast, out[0].Track, out...); err != nil {
				return fmt.Errorf("cliptag: %s: %w", broadcast, err)
			}
		}
	}
	return nil
}

// tagGroup stores a copy of e's group with a free box carrying index appended
// to its first frame, when that frame is CMAF (a moof or styp box first), and
// returns e pointing at it; other groups (catalog.json, ...) are kept as they
// are. A top-level free box after the mdat is valid ISO-BMFF, changes no
// offset the moof holds, and is dropped by players and by ec-node export.
func tagGroup(ctx context.Context, s *cas.Local, e manifest.Entry, index uint64) (manifest.Entry, error) {
	id, err := cas.ParseID(e.BLAKE3)
	if err != nil {
		return e, err
	}
	r, err := s.Open(ctx, id)
	if err != nil {
		return e, err
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return e, fmt.Errorf("object %s: %w", id, err)
	}
	if len(e.Frames) == 0 || int64(len(data)) != e.Size || !isCMAF(data[:e.Frames[0]]) {
		return e, nil
	}
	box := make([]byte, FreeBoxSize)
	binary.BigEndian.PutUint32(box, FreeBoxSize)
	copy(box[4:], "free")
	binary.BigEndian.PutUint64(box[8:], index)
	tagged := bytes.Join([][]byte{data[:e.Frames[0]], box, data[e.Frames[0]:]}, nil)
	res, err := cas.Put(ctx, s, bytes.NewReader(tagged))
	if err != nil {
		return e, err
	}
	e.Frames = append([]int64{e.Frames[0] + FreeBoxSize}, e.Frames[1:]...)
	e.Size += FreeBoxSize
	e.BLAKE3, e.Path = res.ID.String(), res.Path
	return e, nil
}

// isCMAF reports whether frame starts with a box a CMAF chunk starts with.
func isCMAF(frame []byte) bool {
	if len(frame) < 8 {
		return false
	}
	size := binary.BigEndian.Uint32(frame)
	typ := string(frame[4:8])
	return size >= 8 && int64(size) <= int64(len(frame)) && (typ == "moof" || typ == "styp")
}
