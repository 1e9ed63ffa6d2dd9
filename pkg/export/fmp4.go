package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
)

// trackInit is what export needs of one rendition's CMAF init segment.
type trackInit struct {
	trak      *mp4.TrakBox
	trex      *mp4.TrexBox
	handler   string // "vide", "soun", ...
	timescale uint32
	brands    *mp4.FtypBox
}

// parseInit decodes a single-track init segment (ftyp + moov with mvex/trex),
// as hang puts in the catalog for a cmaf rendition.
func parseInit(data []byte) (*trackInit, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	if f.Init == nil || f.Init.Moov == nil {
		return nil, errors.New("init segment: no moov")
	}
	moov := f.Init.Moov
	if len(moov.Traks) != 1 {
		return nil, fmt.Errorf("init segment: %d tracks, want 1", len(moov.Traks))
	}
	trak := moov.Traks[0]
	if trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Hdlr == nil || trak.Tkhd == nil {
		return nil, errors.New("init segment: trak lacks tkhd, mdhd or hdlr")
	}
	ti := &trackInit{trak: trak, handler: trak.Mdia.Hdlr.HandlerType, timescale: trak.Mdia.Mdhd.Timescale, brands: f.Init.Ftyp}
	if ti.timescale == 0 {
		return nil, errors.New("init segment: timescale 0")
	}
	if moov.Mvex != nil {
		for _, trex := range moov.Mvex.Trexs {
			if trex.TrackID == trak.Tkhd.TrackID {
				ti.trex = trex
			}
		}
	}
	if ti.trex == nil {
		return nil, errors.New("init segment: no trex for its track (not a fragmented init)")
	}
	return ti, nil
}

// mergeInit writes one init segment holding every track, track i+1 being
// tracks[i]: the traks and trex boxes are those of the renditions with only
// their track ids changed.
func mergeInit(w io.Writer, tracks []*trackInit) error {
	init := mp4.NewMP4Init()
	ftyp := tracks[0].brands
	if ftyp == nil {
		ftyp = mp4.CreateFtyp()
	}
	init.AddChild(ftyp)
	moov := mp4.NewMoovBox()
	init.AddChild(moov)
	mvhd := mp4.CreateMvhd()
	mvhd.NextTrackID = uint32(len(tracks) + 1)
	moov.AddChild(mvhd)
	mvex := mp4.NewMvexBox()
	for i, t := range tracks {
		id := uint32(i + 1)
		t.trak.Tkhd.TrackID = id
		t.trex.TrackID = id
		moov.AddChild(t.trak)
		mvex.AddChild(t.trex)
	}
	moov.AddChild(mvex)
	return init.Encode(w)
}

// fragment is one moof+mdat of a single track, as hang's cmaf container puts
// in each frame.
type fragment struct {
	moof     *mp4.MoofBox
	moofSize uint64
	mdat     []byte // the whole mdat box, passed through untouched
	decode   uint64 // tfdt
	duration uint64 // sum of the sample durations
}

// parseFragments splits a group's payload into its fragments. Boxes other than
// moof and mdat (styp, prft, emsg) are dropped; an mdat without a moof, a
// moof with other than one traf, or a moof without tfdt is an error.
func parseFragments(payload []byte, trex *mp4.TrexBox) (out []fragment, err error) {
	// The payload came from a publisher; a box mp4ff cannot cope with must
	// fail this group, not the process.
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("undecodable box: %v", p)
		}
	}()
	var cur *fragment
	for pos := uint64(0); pos < uint64(len(payload)); {
		start := pos
		hdr, err := mp4.DecodeHeader(bytes.NewReader(payload[start:]))
		if err != nil {
			return nil, fmt.Errorf("box at byte %d: %w", start, err)
		}
		if hdr.Size < uint64(hdr.Hdrlen) || hdr.Size > uint64(len(payload))-start {
			return nil, fmt.Errorf("%s box at byte %d: size %d outside the %d bytes left", hdr.Name, start, hdr.Size, uint64(len(payload))-start)
		}
		pos += hdr.Size
		if hdr.Name != "moof" && hdr.Name != "mdat" {
			continue // styp, prft, emsg, ...: dropped, so not decoded either
		}
		if hdr.Name == "moof" {
			if err := checkMoof(payload[start:pos]); err != nil {
				return nil, fmt.Errorf("moof at byte %d: %w", start, err)
			}
		}
		box, err := mp4.DecodeBoxSR(start, bits.NewFixedSliceReader(payload[start:pos]))
		if err != nil {
			return nil, fmt.Errorf("box at byte %d: %w", start, err)
		}
		switch b := box.(type) {
		case *mp4.MoofBox:
			if cur != nil {
				return nil, fmt.Errorf("moof at byte %d follows a moof without mdat", start)
			}
			if len(b.Trafs) != 1 || b.Traf.Tfdt == nil || b.Traf.Tfhd == nil {
				return nil, fmt.Errorf("moof at byte %d: want one traf with tfhd and tfdt", start)
			}
			cur = &fragment{moof: b, moofSize: hdr.Size, decode: b.Traf.Tfdt.BaseMediaDecodeTime()}
			def := trex.DefaultSampleDuration
			if b.Traf.Tfhd.HasDefaultSampleDuration() {
				def = b.Traf.Tfhd.DefaultSampleDuration
			}
			for _, trun := range b.Traf.Truns {
				cur.duration += trun.Duration(def)
			}
		case *mp4.MdatBox:
			if cur == nil {
				return nil, fmt.Errorf("mdat at byte %d without a moof", start)
			}
			cur.mdat = payload[start:pos]
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		return nil, errors.New("payload ends after a moof without its mdat")
	}
	return out, nil
}

// checkMoof checks a moof box (header included) before mp4ff decodes it.
// mp4ff sizes a box it knows by what it decodes, not by the size the box
// declares, and sizes some slices by the sample count a trun claims before
// reading its entries: so a box whose declared size differs from its content,
// or a count its bytes cannot hold, could make mp4ff read boxes we never
// checked or allocate without bound. Only the boxes CMAF fragments carry are
// accepted in moof and traf, each of exactly the size its fields give.
func checkMoof(moof []byte) error {
	body, err := boxBody(moof, "moof")
	if err != nil {
		return err
	}
	return eachBox(body, func(typ string, b []byte) error {
		switch typ {
		case "mfhd":
			return wantLen(typ, b, 8)
		case "traf":
			return eachBox(b, checkTrafChild)
		}
		return fmt.Errorf("moof: unsupported %q box", typ)
	})
}

func checkTrafChild(typ string, b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("%s: %d bytes", typ, len(b))
	}
	version, flags := b[0], binary.BigEndian.Uint32(b)&0xffffff
	switch typ {
	case "tfhd": // track id, then the fields its flags name
		return wantLen(typ, b, 8+fieldBytes(flags, map[uint32]int{0x1: 8, 0x2: 4, 0x8: 4, 0x10: 4, 0x20: 4}))
	case "tfdt":
		if version == 1 {
			return wantLen(typ, b, 12)
		}
		return wantLen(typ, b, 8)
	case "trun": // sample count, optional data offset and first flags, then the samples
		if len(b) < 8 {
			return fmt.Errorf("trun: %d bytes", len(b))
		}
		count := uint64(binary.BigEndian.Uint32(b[4:]))
		if count > maxTrunSamples {
			return fmt.Errorf("trun claims %d samples, more than %d", count, maxTrunSamples)
		}
		perSample := uint64(fieldBytes(flags, map[uint32]int{0x100: 4, 0x200: 4, 0x400: 4, 0x800: 4}))
		fixed := uint64(8 + fieldBytes(flags, map[uint32]int{0x1: 4, 0x4: 4}))
		if want := fixed + count*perSample; uint64(len(b)) != want {
			return fmt.Errorf("trun of %d samples holds %d bytes, want %d", count, len(b), want)
		}
		return nil
	case "sdtp": // one byte per sample, sized by the box
		return nil
	}
	return fmt.Errorf("traf: unsupported %q box", typ)
}

// maxTrunSamples bounds a trun's sample count even where its samples take no
// bytes (every field defaulted): far above any real fragment's frame count.
const maxTrunSamples = 1 << 20

// fieldBytes adds the sizes of the optional fields whose flag bits are set.
func fieldBytes(flags uint32, sizes map[uint32]int) int {
	n := 0
	for bit, size := range sizes {
		if flags&bit != 0 {
			n += size
		}
	}
	return n
}

func wantLen(typ string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("%s: %d bytes, want %d", typ, len(b), n)
	}
	return nil
}

// eachBox calls fn with the type and body of each box in a run of whole boxes.
func eachBox(boxes []byte, fn func(typ string, body []byte) error) error {
	for len(boxes) > 0 {
		if len(boxes) < 8 {
			return fmt.Errorf("%d bytes left, less than a box header", len(boxes))
		}
		size := uint64(binary.BigEndian.Uint32(boxes))
		typ := string(boxes[4:8])
		if size < 8 || size > uint64(len(boxes)) { // 0 and 1 (to the end, 64-bit) have no place inside a moof
			return fmt.Errorf("%s box: size %d outside the %d bytes left", typ, size, len(boxes))
		}
		if err := fn(typ, boxes[8:size]); err != nil {
			return err
		}
		boxes = boxes[size:]
	}
	return nil
}

// boxBody returns the body of the single box b of type typ.
func boxBody(b []byte, typ string) ([]byte, error) {
	var body []byte
	err := eachBox(b, func(t string, inner []byte) error {
		if t != typ || body != nil {
			return fmt.Errorf("want one %s box, got %s", typ, t)
		}
		body = inner
		return nil
	})
	return body, err
}

// write writes the fragment as fragment sequence seq of track id, its decode
// time lowered by base. Only the mfhd sequence, the tfhd track id and the tfdt
// change; the moof keeps its size (tfdt keeps its version), so trun data
// offsets stay right and the mdat is written as it was.
func (f *fragment) write(w io.Writer, seq, trackID uint32, base uint64) error {
	f.moof.Mfhd.SequenceNumber = seq
	f.moof.Traf.Tfhd.TrackID = trackID
	tfdt := f.moof.Traf.Tfdt
	version := tfdt.Version
	tfdt.SetBaseMediaDecodeTime(f.decode - base)
	tfdt.Version = version
	var buf bytes.Buffer
	if err := f.moof.Encode(&buf); err != nil {
		return fmt.Errorf("encode moof: %w", err)
	}
	if uint64(buf.Len()) != f.moofSize {
		return fmt.Errorf("re-encoded moof is %d bytes, was %d", buf.Len(), f.moofSize)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(f.mdat)
	return err
}
