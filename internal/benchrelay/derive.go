package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// freeBoxSize is the ISO-BMFF free box derive appends: size, type, and the
// copy's index.
const freeBoxSize = 16

// deriveMain writes copies -first .. -first+-n-1 of one archived broadcast,
// each under its own name, with every CMAF group's bytes made unique to the
// copy, so that N replays of one recorded clip are N streams to the archiver's
// store rather than one stream and N-1 dedup hits.
func deriveMain(args []string) error {
	fs := flag.NewFlagSet("derive", flag.ContinueOnError)
	store := fs.String("store", "", "CAS root holding the broadcast; the copies' objects go there too")
	manifests := fs.String("manifests", "", "manifest root")
	from := fs.String("from", "", "broadcast to copy")
	name := fs.String("name", "", "name of copy i, with %d for i (e.g. src-%d.hang)")
	first := fs.Int("first", 0, "index of the first copy")
	n := fs.Int("n", 1, "copies to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *store == "" || *manifests == "" || *from == "" || *name == "" || *first < 0 || *n < 0 {
		return errors.New("derive: want -store, -manifests, -from, -name, -first >= 0 and -n >= 0")
	}
	s, err := cas.OpenLocal(*store)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(*manifests, *from, "*.jsonl"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("derive: no manifest of %s under %s", *from, *manifests)
	}
	var tracks [][]manifest.Entry
	for _, f := range files {
		es, err := readJSONLines[manifest.Entry](f)
		if err != nil {
			return err
		}
		tracks = append(tracks, es)
	}
	dir, err := manifest.OpenDir(*manifests, 0, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	for i := *first; i < *first+*n; i++ {
		broadcast := fmt.Sprintf(*name, i)
		for _, es := range tracks {
			out := make([]manifest.Entry, 0, len(es))
			for _, e := range es {
				e.Broadcast = broadcast
				if e.Kind == record.KindGroup {
					if e, err = tagGroup(ctx, s, e, uint64(i)); err != nil {
						return fmt.Errorf("derive %s: %w", broadcast, err)
					}
				}
				out = append(out, e)
			}
			if len(out) == 0 {
				continue
			}
			if _, err := dir.Append(broadcast, out[0].Track, out...); err != nil {
				return fmt.Errorf("derive %s: %w", broadcast, err)
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
	box := make([]byte, freeBoxSize)
	binary.BigEndian.PutUint32(box, freeBoxSize)
	copy(box[4:], "free")
	binary.BigEndian.PutUint64(box[8:], index)
	tagged := bytes.Join([][]byte{data[:e.Frames[0]], box, data[e.Frames[0]:]}, nil)
	res, err := cas.Put(ctx, s, bytes.NewReader(tagged))
	if err != nil {
		return e, err
	}
	e.Frames = append([]int64{e.Frames[0] + freeBoxSize}, e.Frames[1:]...)
	e.Size += freeBoxSize
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
