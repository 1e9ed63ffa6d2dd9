package h3wt

import (
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"
)

// StreamError is a stream reset (or STOP_SENDING) with a WebTransport
// application error code.
type StreamError struct {
	Code   uint32
	Remote bool
}

func (e *StreamError) Error() string {
	side := "locally"
	if e.Remote {
		side = "by peer"
	}
	return fmt.Sprintf("stream reset %s with code %#x", side, e.Code)
}

// convert maps a quic-go stream error to a StreamError in the WebTransport code
// space; other errors pass through.
func convert(err error) error {
	var qe *quic.StreamError
	if errors.As(err, &qe) {
		if code, ok := fromHTTPCode(uint64(qe.ErrorCode)); ok {
			return &StreamError{Code: code, Remote: qe.Remote}
		}
		return fmt.Errorf("stream reset with HTTP/3 code %#x: %w", uint64(qe.ErrorCode), err)
	}
	return err
}

// ReceiveStream is the receiving half of a WebTransport stream.
type ReceiveStream struct{ str *quic.ReceiveStream }

func (s *ReceiveStream) Read(p []byte) (int, error) {
	n, err := s.str.Read(p)
	return n, convert(err)
}
func (s *ReceiveStream) CancelRead(code uint32) {
	s.str.CancelRead(quic.StreamErrorCode(toHTTPCode(code)))
}
func (s *ReceiveStream) SetReadDeadline(t time.Time) error { return s.str.SetReadDeadline(t) }

// SendStream is the sending half of a WebTransport stream.
type SendStream struct{ str *quic.SendStream }

func (s *SendStream) Write(p []byte) (int, error) {
	n, err := s.str.Write(p)
	return n, convert(err)
}
func (s *SendStream) Close() error { return s.str.Close() }
func (s *SendStream) CancelWrite(code uint32) {
	s.str.CancelWrite(quic.StreamErrorCode(toHTTPCode(code)))
}

// Stream is a bidirectional WebTransport stream.
type Stream struct{ str *quic.Stream }

func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.str.Read(p)
	return n, convert(err)
}
func (s *Stream) Write(p []byte) (int, error) {
	n, err := s.str.Write(p)
	return n, convert(err)
}
func (s *Stream) Close() error                      { return s.str.Close() }
func (s *Stream) CancelRead(code uint32)            { s.str.CancelRead(quic.StreamErrorCode(toHTTPCode(code))) }
func (s *Stream) CancelWrite(code uint32)           { s.str.CancelWrite(quic.StreamErrorCode(toHTTPCode(code))) }
func (s *Stream) SetReadDeadline(t time.Time) error { return s.str.SetReadDeadline(t) }
