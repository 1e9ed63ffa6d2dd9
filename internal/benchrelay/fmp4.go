package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// maxHeaderBox bounds the boxes read whole (moov, moof); media data is streamed.
const maxHeaderBox = 4 << 20

// fragment is one event of `watch`: a movie fragment (moof + mdat) whose last
// byte has just been read. moq export fmp4 writes one fragment per MoQ group,
// so this is when the reference subscriber handed that group to its sink.
type fragment struct {
	Label         string `json:"label"`
	WrittenUnixUs int64  `json:"written_unix_us"`
	TrackID       uint32 `json:"track_id"`
	Handler       string `json:"handler"` // "vide", "soun", ... from the moov
	Timescale     uint32 `json:"timescale"`
	DecodeTime    uint64 `json:"decode_time"` // tfdt, in Timescale units
	Bytes         int64  `json:"bytes"`       // moof + mdat; 0 for a second traf of one moof
	TotalBytes    int64  `json:"total_bytes"` // of the whole stream so far
}

func watchMain(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	label := fs.String("label", "", "label written into every event (the broadcast name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	err := watch(bufio.NewReaderSize(os.Stdin, 256<<10), *label, time.Now, func(f fragment) error {
		if err := enc.Encode(f); err != nil {
			return err
		}
		return out.Flush()
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}

type trackInfo struct {
	handler   string
	timescale uint32
}

type trackFragment struct {
	trackID    uint32
	decodeTime uint64
}

// watch reads an fMP4 stream to its end and calls emit for each fragment once
// its media data has been read. Memory is bounded by maxHeaderBox.
func watch(r io.Reader, label string, now func() time.Time, emit func(fragment) error) error {
	tracks := map[uint32]trackInfo{}
	var (
		total     int64
		pending   []trackFragment // of the last moof, emitted when its mdat ends
		moofBytes int64
		hdr       [16]byte
	)
	for {
		if _, err := io.ReadFull(r, hdr[:8]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("box header at byte %d: %w", total, err)
		}
		size, typ, hdrLen := int64(binary.BigEndian.Uint32(hdr[:4])), string(hdr[4:8]), int64(8)
		if size == 1 {
			if _, err := io.ReadFull(r, hdr[8:16]); err != nil {
				return fmt.Errorf("%s box size at byte %d: %w", typ, total, err)
			}
			size, hdrLen = int64(binary.BigEndian.Uint64(hdr[8:16])), 16
		}
		body := size - hdrLen
		if size == 0 { // to the end of the stream: only media data can be that open
			if typ != "mdat" {
				return fmt.Errorf("%s box at byte %d has no size", typ, total)
			}
			body = -1
		} else if body < 0 {
			return fmt.Errorf("%s box at byte %d: size %d below its header", typ, total, size)
		}
		switch typ {
		case "moov", "moof":
			if body > maxHeaderBox {
				return fmt.Errorf("%s box of %d bytes exceeds %d", typ, body, maxHeaderBox)
			}
			b := make([]byte, body)
			if _, err := io.ReadFull(r, b); err != nil {
				return fmt.Errorf("%s box at byte %d: %w", typ, total, err)
			}
			var err error
			if typ == "moov" {
				err = parseMoov(b, tracks)
			} else {
				pending, err = parseMoof(b)
				moofBytes = size
			}
			if err != nil {
				return fmt.Errorf("%s box at byte %d: %w", typ, total, err)
			}
			total += size
			continue
		}
		var n int64
		var err error
		if body < 0 {
			n, err = io.Copy(io.Discard, r)
		} else {
			n, err = io.CopyN(io.Discard, r, body)
		}
		total += hdrLen + n
		if err != nil {
			return fmt.Errorf("%s box at byte %d: %w", typ, total, err)
		}
		if typ != "mdat" || pending == nil {
			continue
		}
		at := now().UnixMicro()
		for i, tf := range pending {
			f := fragment{Label: label, WrittenUnixUs: at, TrackID: tf.trackID, DecodeTime: tf.decodeTime, TotalBytes: total}
			if t, ok := tracks[tf.trackID]; ok {
				f.Handler, f.Timescale = t.handler, t.timescale
			}
			if i == 0 {
				f.Bytes = moofBytes + hdrLen + n
			}
			if err := emit(f); err != nil {
				return err
			}
		}
		pending = nil
	}
}

// parseMoov records each trak's track ID, handler type and media timescale.
func parseMoov(b []byte, tracks map[uint32]trackInfo) error {
	return children(b, func(typ string, trak []byte) error {
		if typ != "trak" {
			return nil
		}
		var id uint32
		var info trackInfo
		err := children(trak, func(typ string, body []byte) error {
			switch typ {
			case "tkhd": // full box; track_ID follows two times of 4 (v0) or 8 (v1) bytes
				v, err := fullBoxField(body, 8, 16, 4)
				id = uint32(v)
				return err
			case "mdia":
				return children(body, func(typ string, body []byte) error {
					switch typ {
					case "mdhd": // full box; timescale follows two times as in tkhd
						v, err := fullBoxField(body, 8, 16, 4)
						info.timescale = uint32(v)
						return err
					case "hdlr": // full box; pre_defined (4), handler_type (4)
						if len(body) < 12 {
							return errors.New("short hdlr")
						}
						info.handler = string(body[8:12])
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		tracks[id] = info
		return nil
	})
}

// parseMoof returns the track and decode time of each traf.
func parseMoof(b []byte) ([]trackFragment, error) {
	var out []trackFragment
	err := children(b, func(typ string, traf []byte) error {
		if typ != "traf" {
			return nil
		}
		var tf trackFragment
		err := children(traf, func(typ string, body []byte) error {
			switch typ {
			case "tfhd":
				v, err := fullBoxField(body, 0, 0, 4)
				tf.trackID = uint32(v)
				return err
			case "tfdt": // baseMediaDecodeTime: 4 bytes (v0) or 8 (v1)
				if len(body) > 0 && body[0] == 1 {
					v, err := fullBoxField(body, 0, 0, 8)
					tf.decodeTime = v
					return err
				}
				v, err := fullBoxField(body, 0, 0, 4)
				tf.decodeTime = v
				return err
			}
			return nil
		})
		out = append(out, tf)
		return err
	})
	return out, err
}

// fullBoxField reads a big-endian field of width bytes from a full box's body,
// after its version/flags word and skip0 (version 0) or skip1 (version 1) bytes.
func fullBoxField(body []byte, skip0, skip1, width int) (uint64, error) {
	if len(body) < 4 {
		return 0, errors.New("short full box")
	}
	off := 4 + skip0
	if body[0] == 1 {
		off = 4 + skip1
	}
	if len(body) < off+width {
		return 0, fmt.Errorf("full box of %d bytes too short for a field at %d", len(body), off)
	}
	var v uint64
	for _, c := range body[off : off+width] {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// children calls fn for each box inside a container's body.
func children(b []byte, fn func(typ string, body []byte) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return fmt.Errorf("%d stray bytes after the last box", len(b))
		}
		size, hdrLen := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		typ := string(b[4:8])
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return fmt.Errorf("%s box: short large size", typ)
			}
			size, hdrLen = binary.BigEndian.Uint64(b[8:16]), 16
		}
		if size < hdrLen || size > uint64(len(b)) {
			return fmt.Errorf("%s box size %d outside its container of %d bytes", typ, size, len(b))
		}
		if err := fn(typ, b[hdrLen:size]); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		b = b[size:]
	}
	return nil
}
