package export

import (
	"bytes"
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
