package record

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/every-channel/ec-node/internal/strictjson"
)

// ErrLineTooLong is returned by ReadLine for a line over its limit.
var ErrLineTooLong = errors.New("line too long")

// Error locates a failure in a record stream.
type Error struct {
	// Record is the 1-based number of the record being read.
	Record int
	// Offset is the byte offset in the stream of the record's header line.
	Offset int64
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("record %d at byte %d: %v", e.Record, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReadLine reads one "\n"-terminated line of at most max bytes (not counting the
// "\n") and returns it without the "\n". The length is checked before more of a
// long line is buffered, so memory stays bounded by max plus br's buffer. It
// returns io.EOF when br is at EOF before the line's first byte, and an error
// wrapping io.ErrUnexpectedEOF when EOF cuts a line short. The returned slice is
// valid until the next read from br.
func ReadLine(br *bufio.Reader, max int) ([]byte, error) {
	var long []byte // only used when a line spans more than br's buffer
	for {
		frag, err := br.ReadSlice('\n')
		n := len(long) + len(frag) // bytes of the line so far, with any "\n"
		switch {
		case err == nil:
			if n-1 > max {
				return nil, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, max)
			}
			if long == nil {
				return frag[:len(frag)-1], nil
			}
			long = append(long, frag...)
			return long[:n-1], nil
		case n > max:
			return nil, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, max)
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, frag...)
		case errors.Is(err, io.EOF):
			if n == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("line without terminating newline: %w", io.ErrUnexpectedEOF)
		default:
			return nil, err
		}
	}
}

// Reader reads a record stream. It validates every header strictly and hands out
// each payload as a stream, so memory does not grow with payload size.
type Reader struct {
	br      *bufio.Reader
	limits  Limits
	record  int   // number of the current record
	start   int64 // offset of the current record's header line
	off     int64 // bytes consumed from br
	payload payloadReader
	err     error // sticky: once set, every call returns it
}

// NewReader returns a Reader of r applying limits (use DefaultLimits()).
func NewReader(r io.Reader, limits Limits) (*Reader, error) {
	if err := limits.validate(); err != nil {
		return nil, err
	}
	rd := &Reader{br: bufio.NewReaderSize(r, 64<<10), limits: limits}
	rd.payload.r = rd
	return rd, nil
}

// Next returns the next record's header and payload. The payload reader yields
// exactly h.Size bytes and then io.EOF, but only after it has checked the
// record's terminator, so a consumer that reads to EOF never accepts a payload
// whose framing is broken. It is valid until the next call to Next, which drains
// whatever the caller left unread. At a clean end of stream (between records)
// Next returns io.EOF; every other error is an *Error, and errors about the
// input's content wrap ErrMalformed (truncation also wraps io.ErrUnexpectedEOF).
func (r *Reader) Next() (Header, io.Reader, error) {
	if r.err != nil {
		return Header{}, nil, r.err
	}
	if r.record > 0 {
		if _, err := io.Copy(io.Discard, &r.payload); err != nil {
			return Header{}, nil, err // already recorded by the payload reader
		}
	}
	r.record++
	r.start = r.off
	line, err := ReadLine(r.br, r.limits.MaxHeaderLine)
	r.off += int64(len(line))
	if err == nil {
		r.off++ // the "\n"
	}
	switch {
	case err == io.EOF:
		r.err = io.EOF
		return Header{}, nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Header{}, nil, r.fail(fmt.Errorf("%w: truncated header line: %w", ErrMalformed, io.ErrUnexpectedEOF))
	case errors.Is(err, ErrLineTooLong):
		return Header{}, nil, r.fail(fmt.Errorf("%w: header %w", ErrMalformed, err))
	case err != nil:
		return Header{}, nil, r.fail(fmt.Errorf("read header: %w", err))
	}
	h, err := r.parseHeader(line)
	if err != nil {
		return Header{}, nil, r.fail(err)
	}
	r.payload.left = h.Size
	r.payload.done = false
	return h, &r.payload, nil
}

// parseHeader decodes and validates one header line.
func (r *Reader) parseHeader(line []byte) (Header, error) {
	h, err := DecodeHeader(line)
	if err != nil {
		return Header{}, err
	}
	if err := r.limits.Check(&h); err != nil {
		return Header{}, err
	}
	return h, nil
}

// DecodeHeader decodes one header line (without its "\n") strictly (see
// strictjson.Decode: valid UTF-8, one JSON object, exactly Header's keys with
// none repeated, no null, the always-written fields present) and checks it with
// Header.Check. It does not apply Limits.
func DecodeHeader(line []byte) (Header, error) {
	var h Header
	if err := strictjson.Decode(line, &h); err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := h.Check(); err != nil {
		return Header{}, err
	}
	// One spelling for "no frames", so that headers compare equal after a round trip.
	if len(h.Frames) == 0 {
		h.Frames = nil
	}
	if len(h.Timestamps) == 0 {
		h.Timestamps = nil
	}
	return h, nil
}

// fail records err as the stream's sticky error, located at the current record.
func (r *Reader) fail(err error) error {
	r.err = &Error{Record: r.record, Offset: r.start, Err: err}
	return r.err
}

// payloadReader is the current record's payload: its remaining bytes, then the
// terminator check.
type payloadReader struct {
	r    *Reader
	left int64
	done bool // terminator checked
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.r.err != nil {
		return 0, p.r.err
	}
	if p.left == 0 {
		if !p.done {
			if err := p.checkTerminator(); err != nil {
				return 0, err
			}
		}
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, err := p.r.br.Read(b)
	p.left -= int64(n)
	p.r.off += int64(n)
	if err == io.EOF && p.left > 0 {
		return n, p.r.fail(fmt.Errorf("%w: payload truncated, %d bytes missing: %w", ErrMalformed, p.left, io.ErrUnexpectedEOF))
	}
	if err != nil && err != io.EOF {
		return n, p.r.fail(fmt.Errorf("read payload: %w", err))
	}
	return n, nil
}

func (p *payloadReader) checkTerminator() error {
	c, err := p.r.br.ReadByte()
	switch {
	case err == io.EOF:
		return p.r.fail(fmt.Errorf("%w: missing record terminator: %w", ErrMalformed, io.ErrUnexpectedEOF))
	case err != nil:
		return p.r.fail(fmt.Errorf("read record terminator: %w", err))
	case c != '\n':
		return p.r.fail(malformed("record terminator is byte 0x%02x, want 0x0a", c))
	}
	p.r.off++
	p.done = true
	return nil
}
