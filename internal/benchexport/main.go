// Command benchexport builds the archive that scripts/bench-export.sh exports:
//
//	benchexport records -broadcast NAME -start UNIXMS -init-dir DIR TRACK.mp4... >records
//
// Each input is a single-track CMAF file (ftyp+moov, then moof+mdat fragments,
// as `moq import fmp4` publishes them: one per frame). It writes the record
// stream moq-sub would have written for that broadcast (docs/record-framing.md):
// first a catalog.json group naming the tracks 0.m4s, 1.m4s, ... (input order)
// with their init segments, then one group per second of media per track, its
// frames the fragments whose decode time falls in that second (1 s GOPs make
// that one GOP per video group), received at the end of its second. The init
// segments are also written to DIR/TRACK.init.mp4 for the reference side.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/every-channel/ec-node/pkg/catalog"
	"github.com/every-channel/ec-node/pkg/record"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "records" {
		fmt.Fprintln(os.Stderr, "usage: benchexport records -broadcast NAME -start UNIXMS -init-dir DIR TRACK.mp4...")
		os.Exit(2)
	}
	if err := recordsMain(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchexport:", err)
		os.Exit(1)
	}
}

func recordsMain(args []string) error {
	fs := flag.NewFlagSet("records", flag.ContinueOnError)
	broadcast := fs.String("broadcast", "bench.hang", "broadcast name")
	start := fs.Int64("start", 1_767_225_600_000, "receive time of the catalog, Unix ms")
	initDir := fs.String("init-dir", "", "write each track's init segment here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *initDir == "" {
		return errors.New("want -init-dir and at least one input file")
	}
	var tracks []track
	for i, path := range fs.Args() {
		t, err := readTrack(path, strconv.Itoa(i)+".m4s")
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := os.WriteFile(filepath.Join(*initDir, t.name+".init.mp4"), t.init, 0o644); err != nil {
			return err
		}
		tracks = append(tracks, t)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	w := record.NewWriter(out)
	doc, err := catalogDoc(tracks)
	if err != nil {
		return err
	}
	h := record.Header{V: 1, Kind: record.KindGroup, Broadcast: *broadcast, Track: catalog.TrackName,
		Frames: []int64{int64(len(doc))}, Size: int64(len(doc)), ReceivedUnixMs: *start}
	if err := w.WriteGroup(h, bytes.NewReader(doc)); err != nil {
		return err
	}
	// Groups in receive order: second k of every track, tracks 7 ms apart.
	for k := 0; ; k++ {
		more := false
		for i, t := range tracks {
			if k >= len(t.groups) {
				continue
			}
			more = true
			h := record.Header{V: 1, Kind: record.KindGroup, Broadcast: *broadcast, Track: t.name,
				Group: uint64(k), ReceivedUnixMs: *start + int64(k+1)*1000 + int64(i)*7}
			var payload []byte
			for _, f := range t.groups[k] {
				h.Frames = append(h.Frames, int64(len(f)))
				payload = append(payload, f...)
			}
			h.Size = int64(len(payload))
			if err := w.WriteGroup(h, bytes.NewReader(payload)); err != nil {
				return err
			}
		}
		if !more {
			break
		}
	}
	return out.Flush()
}

// track is one input: its init segment and fragments grouped by second.
type track struct {
	name    string
	handler string
	init    []byte
	groups  [][][]byte
}

// readTrack splits a single-track CMAF file into its init segment and fragments
// (moof+mdat, bytes as in the file), grouped by the second of their decode time.
func readTrack(path, name string) (track, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return track{}, err
	}
	t := track{name: name}
	var timescale uint64
	var moofStart = -1
	var decode uint64
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		start := len(data) - r.Len()
		box, err := mp4.DecodeBox(uint64(start), r)
		if err != nil {
			return track{}, fmt.Errorf("box at byte %d: %w", start, err)
		}
		end := len(data) - r.Len()
		switch b := box.(type) {
		case *mp4.FtypBox:
			t.init = append(t.init, data[start:end]...)
		case *mp4.MoovBox:
			if len(b.Traks) != 1 {
				return track{}, fmt.Errorf("want one track, got %d", len(b.Traks))
			}
			timescale = uint64(b.Trak.Mdia.Mdhd.Timescale)
			t.handler = b.Trak.Mdia.Hdlr.HandlerType
			t.init = append(t.init, data[start:end]...)
		case *mp4.MoofBox:
			if b.Traf == nil || b.Traf.Tfdt == nil {
				return track{}, fmt.Errorf("moof at byte %d has no tfdt", start)
			}
			moofStart, decode = start, b.Traf.Tfdt.BaseMediaDecodeTime()
		case *mp4.MdatBox:
			if moofStart < 0 || timescale == 0 {
				return track{}, fmt.Errorf("mdat at byte %d without moov and moof before it", start)
			}
			k := int(decode / timescale)
			for len(t.groups) <= k {
				t.groups = append(t.groups, nil)
			}
			t.groups[k] = append(t.groups[k], data[moofStart:end])
			moofStart = -1
		}
	}
	if len(t.groups) == 0 {
		return track{}, errors.New("no fragments")
	}
	for k, g := range t.groups {
		if len(g) == 0 {
			return track{}, fmt.Errorf("no fragment in second %d", k)
		}
	}
	return t, nil
}

// catalogDoc is a hang catalog with each track as a cmaf rendition, under
// "video" or "audio" by its handler.
func catalogDoc(tracks []track) ([]byte, error) {
	sections := map[string]map[string]any{}
	for _, t := range tracks {
		kind := "audio"
		if t.handler == "vide" {
			kind = "video"
		}
		if sections[kind] == nil {
			sections[kind] = map[string]any{}
		}
		sections[kind][t.name] = map[string]any{
			"container": map[string]string{"kind": "cmaf", "init": base64.StdEncoding.EncodeToString(t.init)},
		}
	}
	doc := map[string]any{}
	for kind, renditions := range sections {
		doc[kind] = map[string]any{"renditions": renditions}
	}
	return json.Marshal(doc)
}
