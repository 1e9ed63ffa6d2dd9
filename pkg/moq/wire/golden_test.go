package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// Golden encodings: from the byte examples in moq-protocol.md (checked against
// moq-net 0.3.16) and from moq-net 0.3.16's own unit tests where noted.
func TestGolden(t *testing.T) {
	s := func(x string) []byte { return []byte(x) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		v    Version
		c    codec
		want any
		wire []byte
	}{
		{"lite-03 subscribe (reference §3.4)", Lite03,
			msgCodec("subscribe", Subscribe.Append, ReadSubscribe, Subscribe{Broadcast: "bbb.hang", Track: "catalog.json"}),
			Subscribe{Broadcast: "bbb.hang", Track: "catalog.json"},
			cat([]byte{0x1c, 0x00, 0x08}, s("bbb.hang"), []byte{0x0c}, s("catalog.json"), []byte{0, 0, 0, 0, 0})},
		{"lite-03 subscribe ok (reference §3.4)", Lite03,
			msgCodec("ok", SubscribeResponse.Append, ReadSubscribeResponse, SubscribeResponse{Kind: ResponseOK}),
			SubscribeResponse{Kind: ResponseOK}, []byte{0x00, 0x05, 0, 0, 0, 0, 0}},
		{"lite-04 announce please (reference §3.3)", Lite04,
			msgCodec("please", AnnouncePlease.Append, ReadAnnouncePlease, AnnouncePlease{}),
			AnnouncePlease{}, []byte{0x02, 0x00, 0x00}},
		{"lite-03 announce with one hop (reference §3.3)", Lite03,
			msgCodec("announce", Announce.Append, ReadAnnounce, Announce{Status: AnnounceActive, Suffix: "bbb.hang", Hops: []uint64{0}}),
			Announce{Status: AnnounceActive, Suffix: "bbb.hang", Hops: []uint64{0}},
			cat([]byte{0x0b, 0x01, 0x08}, s("bbb.hang"), []byte{0x01})},
		{"lite-05 announce ok (reference §3.3)", Lite05,
			msgCodec("ok", AnnounceOK.Append, ReadAnnounceOK, AnnounceOK{}), AnnounceOK{}, []byte{0x02, 0x00, 0x00}},
		{"lite-05 subscriber setup (reference §3.2)", Lite05,
			msgCodec("setup", Setup.Append, ReadSetup, Setup{Role: RoleSubscriber}), Setup{Role: RoleSubscriber},
			[]byte{0x04, 0x01, 0x03, 0x01, 0x02}},
		{"lite-05 empty setup (reference §3.2)", Lite05,
			msgCodec("setup", Setup.Append, ReadSetup, Setup{}), Setup{}, []byte{0x01, 0x00}},
		{"setup cost 100 (moq-net setup.rs parameter_values_use_the_version_codec)", Lite05,
			msgCodec("setup", Setup.Append, ReadSetup, Setup{Cost: 100, HasCost: true}), Setup{Cost: 100, HasCost: true},
			[]byte{0x05, 0x01, 0x04, 0x02, 0x40, 0x64}},
		{"lite-05 subscribe end (moq-net subscribe.rs)", Lite05,
			msgCodec("end", SubscribeResponse.Append, ReadSubscribeResponse, SubscribeResponse{Kind: ResponseEnd, Group: 7}),
			SubscribeResponse{Kind: ResponseEnd, Group: 7}, []byte{0x01, 0x01, 0x07}},
		{"lite-05 drop is type 2 (moq-net subscribe.rs)", Lite05,
			msgCodec("drop", SubscribeResponse.Append, ReadSubscribeResponse, SubscribeResponse{Kind: ResponseDrop, Drop: SubscribeDrop{Start: 1, End: 3}}),
			SubscribeResponse{Kind: ResponseDrop, Drop: SubscribeDrop{Start: 1, End: 3}}, []byte{0x02, 0x03, 0x01, 0x03, 0x00}},
		{"lite-04 drop is type 1 (moq-net subscribe.rs)", Lite04,
			msgCodec("drop", SubscribeResponse.Append, ReadSubscribeResponse, SubscribeResponse{Kind: ResponseDrop, Drop: SubscribeDrop{Start: 1, End: 3}}),
			SubscribeResponse{Kind: ResponseDrop, Drop: SubscribeDrop{Start: 1, End: 3}}, []byte{0x01, 0x03, 0x01, 0x03, 0x00}},
		{"default track info (moq-net track.rs cross-language bytes)", Lite05,
			msgCodec("info", TrackInfo.Append, ReadTrackInfo, TrackInfo{Priority: 127, MaxLatencyMs: 5000, Timescale: 1000}),
			TrackInfo{Priority: 127, MaxLatencyMs: 5000, Timescale: 1000}, []byte{0x06, 0x7f, 0x00, 0x53, 0x88, 0x43, 0xe8}},
		// Lite-06, laid out from moq-net 0.3.16 lite/{subscribe,announce,group,track}.rs.
		{"lite-06 subscribe: no Ordered byte, floor 0, frame bounds", Lite06,
			msgCodec("subscribe", Subscribe.Append, ReadSubscribe, Subscribe{Broadcast: "bbb.hang", Track: "catalog.json"}),
			Subscribe{Broadcast: "bbb.hang", Track: "catalog.json"},
			cat([]byte{0x1d, 0x00, 0x08}, s("bbb.hang"), []byte{0x0c}, s("catalog.json"), []byte{0, 0, 0, 0, 0, 0})},
		{"lite-06 subscribe (moq-net subscribe.rs subscribe_sample)", Lite06,
			msgCodec("subscribe", Subscribe.Append, ReadSubscribe, Subscribe{ID: 1, Broadcast: "room", Track: "video", Priority: 3,
				MaxLatencyMs: 250, Start: OptionalGroup{Seq: 7, Set: true}, End: OptionalGroup{Seq: 9, Set: true},
				StartFrame: 4, EndFrame: OptionalFrame{Index: 2, Set: true}}),
			Subscribe{ID: 1, Broadcast: "room", Track: "video", Priority: 3,
				MaxLatencyMs: 250, Start: OptionalGroup{Seq: 7, Set: true}, End: OptionalGroup{Seq: 9, Set: true},
				StartFrame: 4, EndFrame: OptionalFrame{Index: 2, Set: true}},
			cat([]byte{0x13, 0x01, 0x04}, s("room"), []byte{0x05}, s("video"), []byte{0x03, 0x40, 0xfa, 0x07, 0x0a, 0x04, 0x03})},
		{"lite-06 subscribe update: raw floor 9", Lite06,
			msgCodec("update", SubscribeUpdate.Append, ReadSubscribeUpdate, SubscribeUpdate{Priority: 1, Start: OptionalGroup{Seq: 9, Set: true}}),
			SubscribeUpdate{Priority: 1, Start: OptionalGroup{Seq: 9, Set: true}}, []byte{0x06, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00}},
		{"lite-06 announce start", Lite06,
			msgCodec("announce", Announce.Append, ReadAnnounce, Announce{Status: AnnounceActive, Suffix: "bbb.hang", Hops: []uint64{}, Cost: RouteCost{Warm: 1, Cold: 2}}),
			Announce{Status: AnnounceActive, Suffix: "bbb.hang", Hops: []uint64{}, Cost: RouteCost{Warm: 1, Cold: 2}},
			cat([]byte{0x00, 0x0c, 0x08}, s("bbb.hang"), []byte{0x00, 0x01, 0x02})},
		{"lite-06 announce end", Lite06,
			msgCodec("announce", Announce.Append, ReadAnnounce, Announce{Status: AnnounceEnded, ID: 3}),
			Announce{Status: AnnounceEnded, ID: 3}, []byte{0x01, 0x01, 0x03}},
		{"lite-06 announce restart", Lite06,
			msgCodec("announce", Announce.Append, ReadAnnounce, Announce{Status: AnnounceRestart, Hops: []uint64{5}, Cost: RouteCost{Warm: 1}}),
			Announce{Status: AnnounceRestart, Hops: []uint64{5}, Cost: RouteCost{Warm: 1}}, []byte{0x02, 0x05, 0x00, 0x01, 0x05, 0x01, 0x00}},
		{"lite-06 announce please has no exclude hop", Lite06,
			msgCodec("please", AnnouncePlease.Append, ReadAnnouncePlease, AnnouncePlease{}), AnnouncePlease{}, []byte{0x01, 0x00}},
		{"lite-06 group with frame start (moq-net group.rs)", Lite06,
			msgCodec("group", Group.Append, ReadGroup, Group{SubscribeID: 1, Sequence: 7, FrameStart: 4}),
			Group{SubscribeID: 1, Sequence: 7, FrameStart: 4}, []byte{0x03, 0x01, 0x07, 0x04}},
		{"lite-06 default track info: no Ordered byte", Lite06,
			msgCodec("info", TrackInfo.Append, ReadTrackInfo, TrackInfo{Priority: 127, MaxLatencyMs: 5000, Timescale: 1000}),
			TrackInfo{Priority: 127, MaxLatencyMs: 5000, Timescale: 1000}, []byte{0x05, 0x7f, 0x53, 0x88, 0x43, 0xe8}},
		{"lite-06 fetch with frame bounds (moq-net fetch.rs fetch_frame_range_roundtrips)", Lite06,
			msgCodec("fetch", Fetch.Append, ReadFetch, Fetch{Broadcast: "room", Track: "video", Priority: 3, Group: 7,
				StartFrame: 2, EndFrame: OptionalFrame{Index: 6, Set: true}}),
			Fetch{Broadcast: "room", Track: "video", Priority: 3, Group: 7, StartFrame: 2, EndFrame: OptionalFrame{Index: 6, Set: true}},
			cat([]byte{0x0f, 0x04}, s("room"), []byte{0x05}, s("video"), []byte{0x03, 0x07, 0x02, 0x07})},
		{"lite-06 fetch of a whole group", Lite06,
			msgCodec("fetch", Fetch.Append, ReadFetch, Fetch{Broadcast: "room", Track: "video", Group: 7}),
			Fetch{Broadcast: "room", Track: "video", Group: 7},
			cat([]byte{0x0f, 0x04}, s("room"), []byte{0x05}, s("video"), []byte{0x00, 0x07, 0x00, 0x00})},
		{"lite-06 subscriber setup: same layout as lite-05", Lite06,
			msgCodec("setup", Setup.Append, ReadSetup, Setup{Role: RoleSubscriber}), Setup{Role: RoleSubscriber},
			[]byte{0x04, 0x01, 0x03, 0x01, 0x02}},
	}
	for _, tc := range cases {
		got, err := tc.c.enc(nil, tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.wire) {
			t.Errorf("%s: encoded % x, want % x", tc.name, got, tc.wire)
		}
		dec, err := tc.c.dec(bytes.NewReader(tc.wire), tc.v)
		if err != nil || !reflect.DeepEqual(dec, tc.want) {
			t.Errorf("%s: decoded %+v, %v", tc.name, dec, err)
		}
	}
}

// The frame header examples: lite-05 zigzag deltas 0→1000→500, lite-03 plain sizes.
func TestGoldenFrameHeaders(t *testing.T) {
	var b []byte
	b, _ = FrameHeader{Size: 3, Timestamp: 1000}.Append(b, Lite05, 0)
	b, _ = FrameHeader{Size: 0, Timestamp: 500}.Append(b, Lite05, 1000)
	// zigzag(1000)=2000=0x47d0, zigzag(-500)=999=0x43e7
	if want := []byte{0x47, 0xd0, 0x03, 0x43, 0xe7, 0x00}; !bytes.Equal(b, want) {
		t.Errorf("lite-05: % x, want % x", b, want)
	}
	b, _ = FrameHeader{Size: 300}.Append(nil, Lite03, 0)
	if want := []byte{0x41, 0x2c}; !bytes.Equal(b, want) {
		t.Errorf("lite-03: % x, want % x", b, want)
	}
}
