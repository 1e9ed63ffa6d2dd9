package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestReadObjectSize: an object is used only when it has exactly the size its
// manifest line names, including claims far beyond the object (and beyond
// what is allocated before reading).
func TestReadObjectSize(t *testing.T) {
	ctx := context.Background()
	store := cas.NewMemory()
	payload := bytes.Repeat([]byte("fragment"), 1000)
	res, err := cas.Put(ctx, store, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(payload))
	tests := []struct {
		size    int64
		wantErr string // "" for success
	}{
		{n, ""},
		{n - 1, fmt.Sprintf("%d bytes, the manifest says %d", n, n-1)},
		{n + 1, fmt.Sprintf("%d bytes, the manifest says %d", n, n+1)},
		{0, fmt.Sprintf("%d bytes, the manifest says 0", 1)},
		{1 << 40, fmt.Sprintf("%d bytes, the manifest says %d", n, int64(1)<<40)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			e := &manifest.Entry{Header: record.Header{V: 1, Kind: record.KindGroup, Broadcast: broadcast,
				Track: videoTrack, Size: tt.size}, BLAKE3: res.ID.String(), Path: res.Path}
			data, err := readObject(ctx, store, "", e)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(data, payload) {
					t.Fatalf("read: %d bytes, %v; want the %d stored", len(data), err, n)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
				t.Fatalf("read: %v; want %v saying %q", err, ErrCorrupt, tt.wantErr)
			}
		})
	}
}
