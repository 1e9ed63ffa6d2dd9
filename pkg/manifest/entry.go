// Package manifest keeps the per-track JSONL index of the archive: one file per
// (broadcast, track) under a manifest directory, one Entry per line, appended
// durably and without duplicates, and beside them the session log of the
// subscriber sessions (SessionLog). The formats are specified in
// docs/manifest.md.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/every-channel/ec-node/internal/strictjson"
	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/record"
)

// Entry is one manifest line: a record header plus, for a group, the object that
// holds its payload.
type Entry struct {
	record.Header
	// BLAKE3 is the object id, 64 lowercase hex (KindGroup only).
	BLAKE3 string `json:"blake3,omitempty"`
	// Path is cas.ObjectPath of the object, relative to the CAS root (KindGroup only).
	Path string `json:"path,omitempty"`
	// New is set by cas-put (true: the object was written, false: it was already
	// stored). It is not part of a manifest file: Appender drops it.
	New *bool `json:"new,omitempty"`
}

// MaxLine is the longest manifest line accepted, in bytes without the "\n": the
// longest header a record.Reader accepts (its encoding is at most
// record.MaxHeaderLine bytes) plus the object fields cas-put adds, so that every
// line cas-put prints is accepted here.
const MaxLine = record.MaxHeaderLine + objectFieldsLen

// objectFieldsLen is the length of the object fields in cas-put's output,
// `,"blake3":"<id>","path":"<path>","new":false`, with the fixed-length id and
// path of cas.ObjectPath (TestObjectFieldsLen checks it against the encoder).
const objectFieldsLen = len(`,"blake3":""`) + 2*cas.IDSize +
	len(`,"path":""`) + len("objects/blake3/xx/") + 2*cas.IDSize + len(".bin") +
	len(`,"new":false`)

// entryLimits are the record format's limits on a header. The payload size is
// not limited here: cas-put may have been run with a larger --max-payload, and
// the object already exists.
var entryLimits = record.FormatLimits()

// Validate checks an entry: a valid header within the record format's limits
// (so that its line, re-encoded by AppendLine, is at most MaxLine bytes), and
// object fields exactly when the kind needs them, with Path equal to
// cas.ObjectPath(BLAKE3).
func (e *Entry) Validate() error {
	if err := e.Header.Check(); err != nil {
		return err
	}
	if err := entryLimits.Check(&e.Header); err != nil {
		return err
	}
	switch e.Kind {
	case record.KindGroup:
		id, err := cas.ParseID(e.BLAKE3)
		if err != nil {
			return fmt.Errorf("%w: blake3: %w", record.ErrMalformed, err)
		}
		if want := cas.ObjectPath(id); e.Path != want {
			return fmt.Errorf("%w: path %q, want %q", record.ErrMalformed, e.Path, want)
		}
	case record.KindGap:
		if e.BLAKE3 != "" || e.Path != "" || e.New != nil {
			return fmt.Errorf("%w: gap entry carries object fields (blake3, path, new)", record.ErrMalformed)
		}
	}
	return nil
}

// ID returns the entry's object id (KindGroup entries that passed Validate).
func (e *Entry) ID() (cas.ID, error) { return cas.ParseID(e.BLAKE3) }

// ParseLine decodes one line (without its "\n") strictly, as
// record.DecodeHeader does (see strictjson.Decode), and validates it.
func ParseLine(line []byte) (Entry, error) {
	var e Entry
	if err := strictjson.Decode(line, &e); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", record.ErrMalformed, err)
	}
	if len(e.Frames) == 0 {
		e.Frames = nil
	}
	if len(e.Timestamps) == 0 {
		e.Timestamps = nil
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// AppendLine appends e's line, with its "\n", to b.
func AppendLine(b []byte, e Entry) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	if err := record.EncodeLine(buf, e); err != nil {
		return b, err
	}
	return buf.Bytes(), nil
}

// LineError locates a bad line.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Decoder reads entries, one per line, with bounded memory.
type Decoder struct{ lines lineReader }

// NewDecoder returns a Decoder reading r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{lineReader{br: bufio.NewReaderSize(r, 64<<10), max: MaxLine}}
}

// Next returns the next entry, io.EOF at the end of input, or a *LineError. A
// last line without "\n" is an error wrapping io.ErrUnexpectedEOF: it may be a
// line cut short by a crashed writer, so it is never taken as complete.
func (d *Decoder) Next() (Entry, error) {
	line, err := d.lines.next()
	if err != nil {
		return Entry{}, err
	}
	e, err := ParseLine(line)
	if err != nil {
		return Entry{}, &LineError{Line: d.lines.n, Err: err}
	}
	return e, nil
}

// Line is the number of the line last returned by Next.
func (d *Decoder) Line() int { return d.lines.n }

// LineBuffered reports whether a complete line is already buffered, so that Next
// will not wait for input.
func (d *Decoder) LineBuffered() bool {
	b, _ := d.lines.br.Peek(d.lines.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// lineReader reads the numbered lines of a JSONL file, each at most max bytes
// without its "\n", for the decoders of its line formats.
type lineReader struct {
	br  *bufio.Reader
	max int
	n   int // number of the line last read
}

// next returns the next line, io.EOF at the end of input, or a *LineError
// (a line over max, or a last line without "\n").
func (r *lineReader) next() ([]byte, error) {
	line, err := record.ReadLine(r.br, r.max)
	if err == io.EOF {
		return nil, io.EOF
	}
	r.n++
	if err != nil {
		if errors.Is(err, record.ErrLineTooLong) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %w", record.ErrMalformed, err)
		}
		return nil, &LineError{Line: r.n, Err: err}
	}
	return line, nil
}
