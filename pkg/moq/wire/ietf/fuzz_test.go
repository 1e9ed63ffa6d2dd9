package ietf

import (
	"bytes"
	"io"
	"reflect"
	"testing"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// Each fuzz target feeds a decoder family arbitrary bytes. Whatever decodes
// must re-encode and decode to the same value; nothing may panic or allocate
// past the limits.

// roundTrip checks decode(encode(m)) == m for a message that decoded.
func roundTrip[M any](t *testing.T, m M, enc func(M, []byte) ([]byte, error), parse func(Message) (M, error)) {
	b, err := enc(m, nil)
	if err != nil {
		t.Fatalf("re-encode %+v: %v", m, err)
	}
	msg, err := ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("re-read %+v: %v", m, err)
	}
	again, err := parse(msg)
	if err != nil || !reflect.DeepEqual(again, m) {
		t.Fatalf("round trip: %+v became %+v (%v)", m, again, err)
	}
}

func FuzzControl(f *testing.F) {
	for _, enc := range []func() ([]byte, error){
		func() ([]byte, error) { return ServerSetup{Version: Draft14, MaxRequestID: 9}.Append(nil) },
		func() ([]byte, error) {
			return Subscribe{RequestID: 2, Namespace: []string{"a"}, Track: "t", Filter: FilterAbsoluteStart, StartGroup: 3}.Append(nil)
		},
		func() ([]byte, error) {
			return SubscribeOK{RequestID: 2, TrackAlias: 2, ContentExists: true, LargestGroup: 4}.Append(nil)
		},
		func() ([]byte, error) {
			return RequestError{RequestID: 2, Code: 4, Reason: "x"}.Append(nil, TypeSubscribeError)
		},
		func() ([]byte, error) { return PublishDone{RequestID: 2, Status: 2, Reason: "x"}.Append(nil) },
		func() ([]byte, error) { return Goaway{URI: "https://x/"}.Append(nil) },
		func() ([]byte, error) {
			return PublishNamespace{RequestID: 1, Namespace: []string{"a", "b"}}.Append(nil)
		},
		func() ([]byte, error) { return AppendPublishNamespaceDone(nil, []string{"a"}) },
		func() ([]byte, error) { return SubscribeNamespace{RequestID: 4, Prefix: []string{"a"}}.Append(nil) },
	} {
		b, err := enc()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := ReadMessage(bytes.NewReader(data))
		if err != nil {
			return
		}
		if m, err := ParseServerSetup(msg); err == nil {
			roundTrip(t, m, ServerSetup.Append, ParseServerSetup)
		}
		msg.Type = TypeSubscribe
		if m, err := ParseSubscribe(msg); err == nil {
			roundTrip(t, m, Subscribe.Append, ParseSubscribe)
		}
		if m, err := ParseSubscribeOK(msg); err == nil {
			roundTrip(t, m, SubscribeOK.Append, ParseSubscribeOK)
		}
		if m, err := ParseRequestError(msg); err == nil {
			roundTrip(t, m, func(m RequestError, b []byte) ([]byte, error) { return m.Append(b, TypeSubscribeError) }, ParseRequestError)
		}
		if m, err := ParsePublishDone(msg); err == nil {
			roundTrip(t, m, PublishDone.Append, ParsePublishDone)
		}
		if m, err := ParseGoaway(msg); err == nil {
			roundTrip(t, m, Goaway.Append, ParseGoaway)
		}
		if m, err := ParsePublishNamespace(msg); err == nil {
			roundTrip(t, m, PublishNamespace.Append, ParsePublishNamespace)
		}
		if m, err := ParseSubscribeNamespace(msg); err == nil {
			roundTrip(t, m, SubscribeNamespace.Append, ParseSubscribeNamespace)
		}
		if ns, err := ParsePublishNamespaceDone(msg); err == nil {
			roundTrip(t, ns, func(ns []string, b []byte) ([]byte, error) { return AppendPublishNamespaceDone(b, ns) }, ParsePublishNamespaceDone)
		}
	})
}

// FuzzSubgroupStream decodes a whole subgroup stream: header, then objects
// until EOF, re-encoding each header.
func FuzzSubgroupStream(f *testing.F) {
	for _, typ := range []uint64{0x10, 0x19, 0x1d, 0x14} {
		b, _ := SubgroupHeader{Type: typ, TrackAlias: 2, Group: 9, Subgroup: typ & subgroupExplicitID, Priority: 1}.Append(nil)
		var ext []byte
		if typ&subgroupExtensions != 0 {
			ext = []byte{0x10, 0x05}
		}
		b, _ = ObjectHeader{Extensions: ext, Size: 2}.Append(b, ext != nil)
		b = append(b, "hi"...)
		b, _ = ObjectHeader{Extensions: ext, Status: StatusEndOfGroup}.Append(b, ext != nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := ReadSubgroupHeader(r)
		if err != nil {
			return
		}
		if b, err := h.Append(nil); err != nil {
			t.Fatalf("re-encode %+v: %v", h, err)
		} else if again, err := ReadSubgroupHeader(bytes.NewReader(b)); err != nil || again != h {
			t.Fatalf("subgroup header %+v became %+v (%v)", h, again, err)
		}
		for i := 0; i < wire.MaxGroupFrames; i++ {
			o, err := ReadObjectHeader(r, h.HasExtensions())
			if err != nil {
				return
			}
			b, err := o.Append(nil, h.HasExtensions())
			if err != nil {
				t.Fatalf("re-encode %+v: %v", o, err)
			}
			again, err := ReadObjectHeader(bytes.NewReader(b), h.HasExtensions())
			if err != nil || !reflect.DeepEqual(again, o) {
				t.Fatalf("object header %+v became %+v (%v)", o, again, err)
			}
			if _, err := io.CopyN(io.Discard, r, int64(o.Size)); err != nil {
				return
			}
		}
	})
}
