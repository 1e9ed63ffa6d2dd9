// Package cas is the content-addressed object store: every object is named by the
// lowercase hex BLAKE3-256 of its exact bytes and lives at
//
//	<root>/objects/blake3/<first 2 hex>/<64 hex>.bin
//
// The layout is the deployed one (ECP-0070) and is specified in docs/cas-layout.md.
// Store is the small interface the archiver writes through, so that a later object
// store (S3-compatible, sharded across hosts) can stand in for the local one;
// package castest is the conformance suite every implementation passes.
package cas

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sync"
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

// Store is a durable content-addressed store. Every method is safe for concurrent
// use; Local is one on a filesystem, Memory one in process memory. castest.Run is
// the suite every Store passes.
type Store interface {
	// Create starts a new object: its bytes are written to the returned Writer,
	// hashed as they stream, and published under their id by Commit. ctx bounds
	// the whole write: once it is done, Write and Commit fail and nothing is
	// published.
	Create(ctx context.Context) (Writer, error)
	// Open returns the object's bytes, or an error satisfying
	// errors.Is(err, fs.ErrNotExist) when it is absent. The caller closes the
	// reader.
	Open(ctx context.Context, id ID) (io.ReadCloser, error)
	// Stat returns the object's size, or an error satisfying
	// errors.Is(err, fs.ErrNotExist) when it is absent.
	Stat(ctx context.Context, id ID) (size int64, err error)
}

// Writer streams one object into a Store. Memory held by a writer does not grow
// with the object's size, unless the store itself is in memory. A Writer is used
// by one goroutine at a time.
type Writer interface {
	// Write appends to the object. After an error every later Write and Commit
	// fails.
	io.Writer
	// Commit publishes the object under its id. When Commit returns nil the
	// object is durable: a crash at any later moment leaves it complete under
	// its name. If the object was already stored (a dedup hit) New is false; of
	// several writers committing the same bytes at once, exactly one reports
	// New. On error nothing is published.
	Commit() (PutResult, error)
	// Abort discards the object. Abort after Commit does nothing, so
	// `defer w.Abort()` is always safe.
	Abort() error
}

// Put stores the bytes of r in s: Create, copy, Commit. Memory stays constant
// (one pooled copy buffer).
func Put(ctx context.Context, s Store, r io.Reader) (PutResult, error) {
	w, err := s.Create(ctx)
	if err != nil {
		return PutResult{}, err
	}
	defer w.Abort()
	buf := copyBuffers.Get().(*[]byte)
	_, err = io.CopyBuffer(w, r, *buf)
	copyBuffers.Put(buf)
	if err != nil {
		return PutResult{}, fmt.Errorf("cas: put: %w", err)
	}
	return w.Commit()
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
