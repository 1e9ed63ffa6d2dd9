// Package cas is the content-addressed object store: every object is named by the
// lowercase hex BLAKE3-256 of its exact bytes and lives at
//
//	<root>/objects/blake3/<first 2 hex>/<64 hex>.bin
//
// The layout is the deployed one (ECP-0070) and is specified in docs/cas-layout.md.
// Store is the small interface the archiver writes through, so that a later object
// store (S3-compatible, sharded across hosts) can stand in for the local one.
package cas

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"path"
)

// IDSize is the size in bytes of an object id (BLAKE3-256).
const IDSize = 32

// ID names an object: the BLAKE3-256 digest of its bytes.
type ID [IDSize]byte

// String returns the id as 64 lowercase hex characters, the form used in paths,
// manifests and b3sum output.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses 64 lowercase hex characters. Upper case is rejected so that every
// id has exactly one spelling on disk and in manifests.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("cas: object id %q: want %d hex characters, got %d", truncate(s), 2*IDSize, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return id, fmt.Errorf("cas: object id %q: not lowercase hex", truncate(s))
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("cas: object id %q: %w", truncate(s), err)
	}
	return id, nil
}

// ObjectPath is the slash-separated path of an object relative to the store root:
// "objects/blake3/aa/<hash>.bin". Manifests record this form.
func ObjectPath(id ID) string {
	h := id.String()
	return path.Join("objects", "blake3", h[:2], h+".bin")
}

// PutResult describes a stored object.
type PutResult struct {
	ID   ID
	Size int64
	// Path is ObjectPath(ID): relative to the store root, slash-separated.
	Path string
	// New is false when the object was already present (a dedup hit): its bytes
	// were hashed but not written again.
	New bool
}

// Store is a durable content-addressed store.
type Store interface {
	// Put reads r to EOF and stores its bytes. When Put returns nil, the object
	// is durable: a crash at any later moment leaves it complete under its name.
	// On error nothing is published under any name. Safe for concurrent use, also
	// by several processes sharing one root.
	Put(ctx context.Context, r io.Reader) (PutResult, error)
	// Open returns the object's bytes. The caller closes the reader.
	Open(ctx context.Context, id ID) (io.ReadCloser, error)
	// Stat returns the object's size, or an error satisfying
	// errors.Is(err, fs.ErrNotExist) when it is absent.
	Stat(ctx context.Context, id ID) (size int64, err error)
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
