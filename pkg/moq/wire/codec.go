package wire

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/quic-go/quic-go/quicvarint"
)

// encoder accumulates a message body; the first error sticks.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) varint(v uint64) {
	if e.err == nil {
		e.b, e.err = AppendVarint(e.b, v)
	}
}

func (e *encoder) u8(v uint8) { e.b = append(e.b, v) }

func (e *encoder) str(s string, limit int) {
	if e.err == nil && len(s) > limit {
		e.err = fmt.Errorf("string of %d bytes: %w", len(s), ErrTooLarge)
	}
	e.varint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) path(p string) {
	if e.err == nil {
		e.err = checkPath(p)
	}
	e.str(p, MaxPathLength)
}

// optional writes an optional value as 0 (absent) or v+1.
func (e *encoder) optional(v uint64, set bool) {
	if !set {
		e.varint(0)
		return
	}
	if v >= MaxVarint {
		e.fail(fmt.Errorf("optional value %d: %w", v, ErrTooLarge))
		return
	}
	e.varint(v + 1)
}

func (e *encoder) optGroup(g OptionalGroup) { e.optional(g.Seq, g.Set) }

func (e *encoder) optFrame(f OptionalFrame) { e.optional(f.Index, f.Set) }

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// appendMessage appends the body built by fill, prefixed by its varint length.
func appendMessage(b []byte, name string, limit int, fill func(*encoder)) ([]byte, error) {
	var e encoder
	fill(&e)
	if e.err == nil && len(e.b) > limit {
		e.err = fmt.Errorf("%d bytes: %w", len(e.b), ErrTooLarge)
	}
	if e.err != nil {
		return b, fmt.Errorf("encode %s: %w", name, e.err)
	}
	b, _ = AppendVarint(b, uint64(len(e.b)))
	return append(b, e.b...), nil
}

// readMessage reads a varint length and that many bytes, refusing lengths over
// limit before allocating. io.EOF means the stream ended cleanly before it.
func readMessage(r Reader, name string, limit int) ([]byte, error) {
	n, err := ReadVarint(r)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s length: %w", name, err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("decode %s: length %d: %w", name, n, ErrTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("decode %s body: %w", name, noEOF(err))
	}
	return body, nil
}

// Decoder parses a message body held in memory; the first error sticks and
// every read past the end is io.ErrUnexpectedEOF. Exported for the IETF codec
// (package ietf), which frames its messages differently but reads the same
// varints, bytes and strings.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a Decoder reading b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err is the first error met, nil while every read succeeded.
func (d *Decoder) Err() error { return d.err }

// Fail records err unless an error is recorded already.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Varint reads a QUIC varint.
func (d *Decoder) Varint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n, err := quicvarint.Parse(d.b)
	if err != nil { // the body ends before or inside the varint
		d.Fail(io.ErrUnexpectedEOF)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.Fail(io.ErrUnexpectedEOF)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Bytes returns a length-prefixed field, copied out of the message buffer.
func (d *Decoder) Bytes(limit int) []byte {
	n := d.Varint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.Fail(fmt.Errorf("length %d: %w", n, ErrTooLarge))
		return nil
	}
	if uint64(len(d.b)) < n {
		d.Fail(io.ErrUnexpectedEOF)
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// Str reads a UTF-8 string: the Rust peers decode names as String and reject
// anything else, so accepting it here would only fail later.
func (d *Decoder) Str(limit int) string {
	v := d.Bytes(limit)
	if d.err == nil && !utf8.Valid(v) {
		d.Fail(fmt.Errorf("string is not UTF-8: %w", ErrInvalid))
	}
	return string(v)
}

func (d *Decoder) path() string {
	p := d.Str(MaxPathLength)
	if d.err == nil {
		d.Fail(checkPath(p))
	}
	return p
}

// optional reads 0 as absent and n as the value n-1.
func (d *Decoder) optional() (uint64, bool) {
	v := d.Varint()
	if v == 0 {
		return 0, false
	}
	return v - 1, true
}

func (d *Decoder) optGroup() OptionalGroup {
	seq, set := d.optional()
	return OptionalGroup{Seq: seq, Set: set}
}

func (d *Decoder) optFrame() OptionalFrame {
	i, set := d.optional()
	return OptionalFrame{Index: i, Set: set}
}

// Finish reports the first error, or ErrTrailingBytes if the body is not used up
// (moq-net rejects such messages as DecodeError::Long).
func (d *Decoder) Finish(name string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes: %w", len(d.b), ErrTrailingBytes)
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", name, d.err)
	}
	return nil
}

func checkPath(p string) error {
	if strings.Count(p, "/")+1 > MaxPathParts {
		return fmt.Errorf("path has more than %d segments: %w", MaxPathParts, ErrTooLarge)
	}
	return nil
}

// OptionalGroup is a group sequence that may be absent: on the wire 0 means
// absent (for a start: the latest group) and n means sequence n-1.
type OptionalGroup struct {
	Seq uint64
	Set bool
}

// OptionalFrame is a frame index within a group that may be absent (lite-06),
// encoded like OptionalGroup.
type OptionalFrame struct {
	Index uint64
	Set   bool
}
