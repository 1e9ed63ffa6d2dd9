package ietf

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

func mustMessage(t *testing.T, b []byte, err error) Message {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestGolden pins the bytes of what we send against draft-14 as moq-net reads
// it: type varint, big-endian u16 length, payload.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  func() ([]byte, error)
		want []byte
	}{
		{"subscribe next group", func() ([]byte, error) {
			return Subscribe{RequestID: 2, Namespace: []string{"a", "b"}, Track: "t", Priority: 128, Filter: FilterNextGroupStart}.Append(nil)
		}, []byte{0x03, 0, 13, 2, 2, 1, 'a', 1, 'b', 1, 't', 0x80, 0, 1, 1, 0}},
		{"subscribe absolute", func() ([]byte, error) {
			return Subscribe{RequestID: 4, Namespace: []string{"a"}, Track: "t", Priority: 1, GroupOrder: 1, Filter: FilterAbsoluteStart, StartGroup: 9}.Append(nil)
		}, []byte{0x03, 0, 13, 4, 1, 1, 'a', 1, 't', 1, 1, 1, 3, 9, 0, 0}},
		{"unsubscribe", func() ([]byte, error) { return AppendRequestID(nil, TypeUnsubscribe, 6) }, []byte{0x0a, 0, 1, 6}},
		{"subscribe namespace", func() ([]byte, error) {
			return SubscribeNamespace{RequestID: 8, Prefix: []string{"x"}}.Append(nil)
		}, []byte{0x11, 0, 5, 8, 1, 1, 'x', 0}},
	} {
		got, err := tc.enc()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, got, tc.want)
		}
	}
}

func TestClientSetupLayout(t *testing.T) {
	b, err := ClientSetup{Versions: []uint64{Draft14}, MaxRequestID: 64, Implementation: "x"}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	// 0x20, length, 1 version (8-byte varint of 0xff00000e), 2 params:
	// MAX_REQUEST_ID=64 (2-byte varint), IMPLEMENTATION="x".
	want := []byte{0x20, 0, 16, 1, 0xc0, 0, 0, 0, 0xff, 0, 0, 0x0e, 2, 2, 0x40, 0x40, 7, 1, 'x'}
	if !bytes.Equal(b, want) {
		t.Fatalf("% x, want % x", b, want)
	}
}

// Over raw QUIC the path and authority ride in CLIENT_SETUP, as PATH (0x01)
// and AUTHORITY (0x05), both bytes.
func TestClientSetupPathLayout(t *testing.T) {
	b, err := ClientSetup{Versions: []uint64{Draft14}, MaxRequestID: 64, Implementation: "x",
		Path: "/a?jwt=t", Authority: "h:1"}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x20, 0, 31, 1, 0xc0, 0, 0, 0, 0xff, 0, 0, 0x0e, 4,
		1, 8, '/', 'a', '?', 'j', 'w', 't', '=', 't',
		2, 0x40, 0x40,
		5, 3, 'h', ':', '1',
		7, 1, 'x'}
	if !bytes.Equal(b, want) {
		t.Fatalf("% x, want % x", b, want)
	}
}

func TestRoundTrip(t *testing.T) {
	setup, err := ServerSetup{Version: Draft14, MaxRequestID: 100}.Append(nil)
	if got, err := ParseServerSetup(mustMessage(t, setup, err)); err != nil || got != (ServerSetup{Version: Draft14, MaxRequestID: 100}) {
		t.Errorf("server setup: %+v %v", got, err)
	}
	sub := Subscribe{RequestID: 2, Namespace: []string{"a", "b"}, Track: "t", Priority: 9, GroupOrder: 2, Filter: FilterAbsoluteStart, StartGroup: 77}
	b, err := sub.Append(nil)
	if got, err := ParseSubscribe(mustMessage(t, b, err)); err != nil || !reflect.DeepEqual(got, sub) {
		t.Errorf("subscribe: %+v %v", got, err)
	}
	ok := SubscribeOK{RequestID: 2, TrackAlias: 5, GroupOrder: 2, ContentExists: true, LargestGroup: 10, LargestObject: 3}
	b, err = ok.Append(nil)
	if got, err := ParseSubscribeOK(mustMessage(t, b, err)); err != nil || got != ok {
		t.Errorf("subscribe ok: %+v %v", got, err)
	}
	re := RequestError{RequestID: 2, Code: CodeTrackDoesNotExist, Reason: "nope"}
	b, err = re.Append(nil, TypeSubscribeError)
	if got, err := ParseRequestError(mustMessage(t, b, err)); err != nil || got != re {
		t.Errorf("request error: %+v %v", got, err)
	}
	done := PublishDone{RequestID: 2, Status: 2, StreamCount: 7, Reason: "ended"}
	b, err = done.Append(nil)
	if got, err := ParsePublishDone(mustMessage(t, b, err)); err != nil || got != done {
		t.Errorf("publish done: %+v %v", got, err)
	}
	g := Goaway{URI: "https://elsewhere/"}
	b, err = g.Append(nil)
	if got, err := ParseGoaway(mustMessage(t, b, err)); err != nil || got != g {
		t.Errorf("goaway: %+v %v", got, err)
	}
	pn := PublishNamespace{RequestID: 3, Namespace: []string{"live", "x.hang"}}
	b, err = pn.Append(nil)
	if got, err := ParsePublishNamespace(mustMessage(t, b, err)); err != nil || !reflect.DeepEqual(got, pn) {
		t.Errorf("publish namespace: %+v %v", got, err)
	}
	b, err = AppendPublishNamespaceDone(nil, pn.Namespace)
	if got, err := ParsePublishNamespaceDone(mustMessage(t, b, err)); err != nil || !reflect.DeepEqual(got, pn.Namespace) {
		t.Errorf("publish namespace done: %+v %v", got, err)
	}
}

func TestNamespacePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ns   []string
		bad  bool
	}{
		{"", nil, false},
		{"bbb.hang", []string{"bbb.hang"}, false},
		{"live/la/nbc", []string{"live", "la", "nbc"}, false},
		{`a\b`, nil, true},
		{strings.Repeat("a/", 32) + "a", nil, true},
	} {
		ns, err := Namespace(tc.path)
		if (err != nil) != tc.bad || !reflect.DeepEqual(ns, tc.ns) {
			t.Errorf("Namespace(%q) = %q, %v", tc.path, ns, err)
			continue
		}
		if tc.bad {
			continue
		}
		if back, err := Path(ns); err != nil || back != tc.path {
			t.Errorf("Path(%q) = %q, %v", ns, back, err)
		}
	}
	for _, ns := range [][]string{{"a", ""}, {"a/b"}, {`a\`}} {
		if _, err := Path(ns); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("Path(%q): %v, want ErrInvalid", ns, err)
		}
	}
}

// TestHostile: lengths and counts over the limits are refused before anything
// is allocated for them.
func TestHostile(t *testing.T) {
	varint := func(v uint64) []byte { b, _ := wire.AppendVarint(nil, v); return b }
	msg := func(typ uint64, body ...[]byte) Message { return Message{Type: typ, Body: bytes.Join(body, nil)} }
	for _, tc := range []struct {
		name  string
		parse func() error
		want  error
	}{
		{"setup params", func() error {
			_, err := ParseServerSetup(msg(TypeServerSetup, varint(Draft14), varint(1<<40)))
			return err
		}, wire.ErrTooLarge},
		{"namespace fields", func() error {
			_, err := ParsePublishNamespace(msg(TypePublishNamespace, varint(1), varint(33)))
			return err
		}, wire.ErrTooLarge},
		{"reason length", func() error {
			_, err := ParseRequestError(msg(TypeSubscribeError, varint(1), varint(4), varint(1<<30)))
			return err
		}, wire.ErrTooLarge},
		{"trailing bytes", func() error {
			_, err := ParseGoaway(msg(TypeGoaway, varint(0), []byte{1}))
			return err
		}, wire.ErrTrailingBytes},
		{"truncated", func() error {
			_, err := ParseSubscribeOK(msg(TypeSubscribeOK, varint(1)))
			return err
		}, io.ErrUnexpectedEOF},
		{"bad content exists", func() error {
			_, err := ParseSubscribeOK(msg(TypeSubscribeOK, varint(1), varint(1), varint(0), []byte{0, 7}, varint(0)))
			return err
		}, wire.ErrInvalid},
		{"wrong setup type", func() error {
			_, err := ParseServerSetup(msg(TypeSubscribe))
			return err
		}, ErrUnexpectedType},
		{"object size", func() error {
			_, err := ReadObjectHeader(bytes.NewReader(bytes.Join([][]byte{varint(0), varint(wire.MaxFrameSize + 1)}, nil)), false)
			return err
		}, wire.ErrTooLarge},
		{"object extensions", func() error {
			_, err := ReadObjectHeader(bytes.NewReader(bytes.Join([][]byte{varint(0), varint(MaxExtensions + 1)}, nil)), true)
			return err
		}, wire.ErrTooLarge},
		{"subgroup type", func() error {
			_, err := ReadSubgroupHeader(bytes.NewReader(varint(0x05)))
			return err
		}, wire.ErrInvalid},
		{"subgroup id both ways", func() error {
			_, err := ReadSubgroupHeader(bytes.NewReader(varint(0x16)))
			return err
		}, wire.ErrInvalid},
		{"message cut short", func() error {
			_, err := ReadMessage(bytes.NewReader([]byte{0x04, 0xff, 0xff, 1, 2}))
			return err
		}, io.ErrUnexpectedEOF},
	} {
		if err := tc.parse(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := ReadMessage(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

// TestSubgroupStream decodes what moq-relay sends for a moq-lite group: type
// 0x19 (extensions, end of group, no subgroup field), objects 0..n with a
// timestamp extension, a zero-length object with status Normal, and FIN.
func TestSubgroupStream(t *testing.T) {
	var b []byte
	b, _ = SubgroupHeader{Type: 0x19, TrackAlias: 4, Group: 12, Priority: 7}.Append(b)
	ext := []byte{0x10, 0x05}
	b, _ = ObjectHeader{Extensions: ext, Size: 2}.Append(b, true)
	b = append(b, "hi"...)
	b, _ = ObjectHeader{Extensions: ext, Size: 0, Status: StatusNormal}.Append(b, true)
	b, _ = ObjectHeader{Size: 3}.Append(b, true)
	b = append(b, "abc"...)
	r := bytes.NewReader(b)
	h, err := ReadSubgroupHeader(r)
	if err != nil || h != (SubgroupHeader{Type: 0x19, TrackAlias: 4, Group: 12, Priority: 7}) || !h.HasExtensions() {
		t.Fatalf("header %+v %v", h, err)
	}
	var sizes []uint64
	for {
		o, err := ReadObjectHeader(r, h.HasExtensions())
		if err == io.EOF {
			break
		}
		if err != nil || o.IDDelta != 0 {
			t.Fatalf("object %+v %v", o, err)
		}
		sizes = append(sizes, o.Size)
		if _, err := r.Seek(int64(o.Size), io.SeekCurrent); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(sizes, []uint64{2, 0, 3}) {
		t.Fatalf("object sizes %v", sizes)
	}
	// A stream cut inside an object header is truncated, not complete.
	if _, err := ReadObjectHeader(bytes.NewReader([]byte{0, 0x40}), false); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut header: %v", err)
	}
}
