package cas

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/zeebo/blake3"
)

// Memory is a Store that keeps its objects in process memory: for tests of the
// code above the store, and the reference a new Store is compared with. It hashes
// and deduplicates exactly as Local does; "durable" means until the process ends.
type Memory struct {
	mu      sync.RWMutex
	objects map[ID][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{objects: map[ID][]byte{}} }

// Create implements Store.
func (m *Memory) Create(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cas: create: %w", err)
	}
	return &memoryWriter{ctx: ctx, store: m, h: blake3.New()}, nil
}

// Open implements Store. The bytes are shared, never copied: objects are
// immutable.
func (m *Memory) Open(ctx context.Context, id ID) (io.ReadCloser, error) {
	data, err := m.object(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("cas: open object %s: %w", id, err)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Stat implements Store.
func (m *Memory) Stat(ctx context.Context, id ID) (int64, error) {
	data, err := m.object(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("cas: stat object %s: %w", id, err)
	}
	return int64(len(data)), nil
}

// Len returns the number of objects stored.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.objects)
}

func (m *Memory) object(ctx context.Context, id ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	data, ok := m.objects[id]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return data, nil
}

// memoryWriter buffers one object and hashes it as it streams.
type memoryWriter struct {
	ctx   context.Context
	store *Memory
	buf   bytes.Buffer
	h     *blake3.Hasher
	err   error // first write error; Commit refuses to publish after one
	done  bool
}

func (w *memoryWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("cas: write: %w", err)
		return 0, w.err
	}
	w.h.Write(p)
	return w.buf.Write(p)
}

func (w *memoryWriter) Commit() (PutResult, error) {
	if w.done {
		return PutResult{}, errWriterDone
	}
	w.done = true
	if w.err != nil {
		return PutResult{}, w.err
	}
	if err := w.ctx.Err(); err != nil {
		return PutResult{}, fmt.Errorf("cas: commit: %w", err)
	}
	var id ID
	w.h.Sum(id[:0])
	res := PutResult{ID: id, Size: int64(w.buf.Len()), Path: ObjectPath(id)}
	m := w.store
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[id]; !ok {
		m.objects[id] = w.buf.Bytes()
		res.New = true
	}
	w.buf = bytes.Buffer{}
	return res, nil
}

func (w *memoryWriter) Abort() error {
	w.done = true
	w.buf = bytes.Buffer{}
	return nil
}
