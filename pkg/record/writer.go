package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Writer writes a record stream. It does not buffer: wrap the destination in a
// bufio.Writer and flush it when a batch is done. After any error the stream may
// hold a partial record, so the Writer refuses further writes.
type Writer struct {
	w   io.Writer
	buf bytes.Buffer
	err error
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteGroup writes a KindGroup record whose payload is exactly h.Size bytes read
// from payload; a payload shorter or longer than that is an error.
func (w *Writer) WriteGroup(h Header, payload io.Reader) error {
	if h.Kind != KindGroup {
		return fmt.Errorf("record: WriteGroup with kind %q", h.Kind)
	}
	return w.write(h, payload)
}

// WriteGap writes a KindGap record.
func (w *Writer) WriteGap(h Header) error {
	if h.Kind != KindGap {
		return fmt.Errorf("record: WriteGap with kind %q", h.Kind)
	}
	return w.write(h, nil)
}

func (w *Writer) write(h Header, payload io.Reader) error {
	if w.err != nil {
		return w.err
	}
	// A header that a Reader with the format's limits would reject is refused
	// before anything is written, so the stream stays usable.
	if err := h.Check(); err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	// The payload size is not limited here: the subscriber applies its own
	// limit and writes too-large gaps.
	limits := FormatLimits()
	if err := limits.checkFields(&h); err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	w.buf.Reset()
	if err := EncodeLine(&w.buf, h); err != nil {
		return err
	}
	if err := limits.checkEncodedLen(w.buf.Len() - 1); err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return w.fail(fmt.Errorf("write header: %w", err))
	}
	if payload != nil {
		if n, err := io.CopyN(w.w, payload, h.Size); err != nil {
			return w.fail(fmt.Errorf("write payload: %d of %d bytes: %w", n, h.Size, err))
		}
		var probe [1]byte
		if n, _ := io.ReadFull(payload, probe[:]); n > 0 {
			return w.fail(fmt.Errorf("payload longer than size %d", h.Size))
		}
	}
	if _, err := w.w.Write([]byte{'\n'}); err != nil {
		return w.fail(fmt.Errorf("write terminator: %w", err))
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("record: %w", err)
	return w.err
}

// EncodeLine writes v as one line of JSON: no HTML escaping (so names stay
// readable), no embedded newline, terminated by "\n".
func EncodeLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("record: encode: %w", err)
	}
	return nil
}
